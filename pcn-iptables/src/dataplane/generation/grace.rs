//! Grace periods: when no packet can still be in the generation before the last switch.

use std::{
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result};

use super::object::pinned;
use crate::dataplane::{sys, timer::Timer};

/// A one-value array (pinned in the namespace's directory) holding the id of the state map
/// of the generation whose switch a grace period has passed since: when it is the running
/// generation's, no packet is still in the generation before, and a change may rewrite
/// the inactive slot at once. A change writes it after its switch, from a helper process
/// that waits for the grace period (see `sys::after_grace_period`).
pub const GRACE_PIN: &str = "PCN_GRACE";

/// The id of the state map of `slot`.
pub fn state_id(dir: &Path, slot: u32) -> Result<u32> {
    Ok(sys::map_info(pinned(dir, &format!("state-{slot}"))?.as_fd())?.id)
}

/// The grace marker (see `GRACE_PIN`), made if missing.
pub fn grace_marker(dir: &Path) -> Result<OwnedFd> {
    if let Ok(fd) = pinned(dir, GRACE_PIN) {
        return Ok(fd);
    }
    let fd = sys::map_create(GRACE_PIN, sys::MAP_TYPE_ARRAY, 4, 8, 1, 0)?;
    sys::obj_pin(fd.as_fd(), &dir.join(GRACE_PIN))?;
    Ok(fd)
}

/// The marker's value while a helper waits for the grace period of generation `id`.
pub const GRACE_PENDING: u64 = 1 << 32;

pub(super) fn marker_value(marker: &OwnedFd) -> Option<u64> {
    let mut value = [0u8; 8];
    matches!(
        sys::map_lookup(marker.as_fd(), &0u32.to_ne_bytes(), &mut value),
        Ok(true)
    )
    .then(|| u64::from_ne_bytes(value))
}

/// The marker about `slot`'s generation: `(marker, state id, passed)`; `None`: it says
/// nothing about it.
pub(super) fn grace_marker_state(dir: &Path, slot: u32) -> Option<(OwnedFd, u32, bool)> {
    let marker = pinned(dir, GRACE_PIN).ok()?;
    let id = state_id(dir, slot).ok()?;
    match marker_value(&marker)? {
        v if v == id as u64 => Some((marker, id, true)),
        v if v == id as u64 | GRACE_PENDING => Some((marker, id, false)),
        _ => None,
    }
}

/// A grace period for the inactive slot: once it has passed, no packet is still being
/// classified by the generation that was active before the last switch (a straggler that
/// read `PCN_ACTIVE` before it), so the slot's maps can be rewritten. Started as soon as the
/// lock is held (the last switch happened before), it passes while the change is prepared.
pub struct Grace(std::sync::Mutex<GraceState>);

pub(super) enum GraceState {
    NotStarted,
    Pending(std::thread::JoinHandle<std::io::Result<()>>),
    /// The last change's helper is waiting for one: its marker will say (see `GRACE_PIN`).
    Helper(OwnedFd, u32),
    Passed,
}

impl Default for Grace {
    fn default() -> Self {
        Grace(std::sync::Mutex::new(GraceState::NotStarted))
    }
}

impl Grace {
    /// Looks at the marker of the last change's helper (see `GRACE_PIN`) for the running
    /// generation, active in `slot`: one has passed, or the helper will say when; else
    /// starts waiting for one.
    pub fn start_after(&self, dir: &Path, slot: u32) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*state, GraceState::NotStarted) {
            return;
        }
        *state = match grace_marker_state(dir, slot) {
            Some((_, _, true)) => GraceState::Passed,
            Some((marker, id, false)) => GraceState::Helper(marker, id),
            None => GraceState::Pending(std::thread::spawn(sys::synchronize)),
        };
    }

    /// Starts waiting for one in the background (call with the lock held).
    pub fn start(&self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, GraceState::NotStarted) {
            *state = GraceState::Pending(std::thread::spawn(sys::synchronize));
        }
    }

    /// Returns once a grace period that began after the lock was taken has passed.
    pub fn wait(&self) -> Result<()> {
        let _t = Timer("grace-wait", std::time::Instant::now());
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, GraceState::Passed) {
            GraceState::Passed => Ok(()),
            GraceState::NotStarted => sys::synchronize().context("waiting for a grace period"),
            GraceState::Pending(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("grace period thread")))
                .context("waiting for a grace period"),
            GraceState::Helper(marker, id) => {
                // A hop of our own proves it in microseconds, where waiting for the helper's
                // may take a scheduler tick (it needs the CPU this command runs on).
                if marker_value(&marker) == Some(id as u64) || sys::hop_over_cpus() {
                    return Ok(());
                }
                // Else the helper, which started at the last switch, is the first to know.
                let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
                while std::time::Instant::now() < deadline {
                    if marker_value(&marker) == Some(id as u64) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                // The helper is gone (killed?): wait ourselves.
                sys::synchronize().context("waiting for a grace period")
            }
        }
    }
}
