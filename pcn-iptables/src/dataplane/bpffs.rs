//! Where the state lives: a bpffs of our own under /run, reachable however the user entered the
//! network namespace.
//!
//! `ip netns exec` gives its command a private mount namespace with /sys remounted, so
//! /sys/fs/bpf is empty there and anything mounted there dies with the command. /run stays
//! shared, so the bpffs is mounted at /run/pcn-iptables/bpffs in a mount namespace that
//! outlives us: if ours lacks it, we move into the nearest ancestor's that has it, or into the
//! outermost ancestor's we can enter, and mount it there.

use std::{
    fs,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, setns},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

pub const RUN_DIR: &str = "/run/pcn-iptables";
pub const BPFFS: &str = "/run/pcn-iptables/bpffs";
/// Bumped whenever a pinned map's layout changes (aya does not check reused pins).
pub const LAYOUT: &str = "v22";

fn is_bpffs(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == BPF_FS_MAGIC)
        .unwrap_or(false)
}

fn mnt_ns(pid: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino())
}

fn parent_of(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the ppid is after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let ppid = rest.split_whitespace().nth(1)?;
    (ppid != "0").then(|| ppid.to_string())
}

fn has_bpffs_mount(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some(BPFFS) && l.contains(" - bpf "))
        })
        .unwrap_or(false)
}

/// Makes BPFFS a bpffs in our mount namespace view, entering a longer-lived mount namespace if
/// needed. Must run while the process is single-threaded.
pub fn ensure() -> Result<()> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    let own = mnt_ns("self");
    let mut target = None;
    let mut pid = "self".to_string();
    while let Some(parent) = parent_of(&pid) {
        let ns = mnt_ns(&parent);
        if ns.is_none() || fs::File::open(format!("/proc/{parent}/ns/mnt")).is_err() {
            break;
        }
        if ns != own {
            target = Some(parent.clone());
            if has_bpffs_mount(&parent) {
                break;
            }
        }
        pid = parent;
    }
    if let Some(pid) = target {
        let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)
            .with_context(|| format!("entering the mount namespace of process {pid}"))?;
        if is_bpffs(Path::new(BPFFS)) {
            return Ok(());
        }
    }
    // Two first commands on a fresh machine both find no bpffs: the second's mount would hide
    // what the first made in its own (its pins then fail). One mounts; the other finds it.
    fs::create_dir_all(BPFFS).with_context(|| format!("creating {BPFFS}"))?;
    let lock = fs::File::create(Path::new(RUN_DIR).join("mount.lock"))
        .with_context(|| format!("creating {RUN_DIR}/mount.lock"))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("locking the bpffs mount")?;
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting a bpffs on {BPFFS}"))?;
    if !is_bpffs(Path::new(BPFFS)) {
        bail!("{BPFFS} is not a bpffs after mounting one there");
    }
    Ok(())
}

/// The network namespace's cookie: unique for the life of the system, unlike its inode.
pub fn netns_cookie() -> Result<u64> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: cookie and len are valid for the size given.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getsockopt(SO_NETNS_COOKIE)");
    }
    Ok(cookie)
}

/// The state directory of the current network namespace.
pub fn netns_dir() -> Result<PathBuf> {
    Ok(Path::new(BPFFS)
        .join(LAYOUT)
        .join(format!("net-{}", netns_cookie()?)))
}

/// The current network namespace's state directories made by binaries of other layouts
/// (older or newer versions): their programs stay attached, and keep ours from attaching.
pub fn other_layouts() -> Result<Vec<PathBuf>> {
    let name = format!("net-{}", netns_cookie()?);
    let Ok(layouts) = fs::read_dir(BPFFS) else {
        return Ok(Vec::new());
    };
    Ok(layouts
        .flatten()
        .filter(|l| l.file_name() != LAYOUT && l.path().is_dir())
        .map(|l| l.path().join(&name))
        .filter(|dir| dir.exists())
        .collect())
}
