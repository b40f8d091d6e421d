//! Serializes invocations in one network namespace, like iptables' xtables lock.

use std::{
    fs::{self, File},
    time::{Duration, Instant},
};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, RESOURCE_PROBLEM};
use crate::model::Wait;

/// The lock file of the current network namespace (no bpffs needed to know it).
pub fn path() -> anyhow::Result<std::path::PathBuf> {
    let dir = super::bpffs::netns_dir()?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(std::path::Path::new(super::bpffs::RUN_DIR)
        .join("locks")
        .join(format!("{name}.lock")))
}

pub struct Lock(#[allow(dead_code)] Flock<File>);

const BUSY: &str = "Another app is currently holding the xtables lock. ";

pub fn acquire(path: &std::path::Path, wait: &Wait) -> Result<Lock, Error> {
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| {
            Error::versioned(
                RESOURCE_PROBLEM,
                format!("can't open lock file {}: {e}", path.display()),
            )
        })?;
    let deadline = match wait {
        Wait::NoWait => Some(Instant::now()),
        Wait::Forever => None,
        Wait::Seconds(s) => Some(Instant::now() + Duration::from_secs(*s)),
    };
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Lock(lock)),
            Err((f, _)) => file = f,
        }
        match (wait, deadline) {
            (Wait::NoWait, _) => {
                return Err(Error::raw(
                    RESOURCE_PROBLEM,
                    format!("{BUSY}Perhaps you want to use the -w option?\n"),
                ));
            }
            (Wait::Seconds(s), Some(d)) if Instant::now() >= d => {
                return Err(Error::raw(
                    RESOURCE_PROBLEM,
                    format!("{BUSY}Stopped waiting after {s}s.\n"),
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
