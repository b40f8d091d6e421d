//! This build of the eBPF object: its bytes, the directory of its classifiers and outer maps
//! in a namespace's directory, and their pins.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};

use crate::dataplane::sys;

/// The eBPF object: entry programs and classifiers.
pub static ELF: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pcn-iptables-ebpf"));

/// Pins of the classifiers, in the build's directory.
pub(super) const CLASSIFY_XDP_PIN: &str = "classify-xdp";
pub(super) const CLASSIFY_TC_PIN: &str = "classify-tc";
/// The outer maps (names in the eBPF object and pins in the build's directory).
pub(super) const OUTER: [&str; 4] = ["CHAINS", "ACTIONS", "FIELDS", "BITMAPS"];

/// The outer maps in `OUTER` order.
pub(super) const CHAINS: usize = 0;
pub(super) const ACTIONS: usize = 1;
pub(super) const FIELDS: usize = 2;
pub(super) const BITMAPS: usize = 3;

/// The directory of this build's programs and outer maps in the namespace's directory `dir`,
/// named by a hash of the eBPF object (build.rs).
pub(super) fn build_dir(dir: &Path) -> PathBuf {
    dir.join(concat!("gen-", env!("PCN_ELF_HASH")))
}

/// Opens the pin `name` in `dir`.
pub(super) fn pinned(dir: &Path, name: &str) -> Result<OwnedFd> {
    let path = dir.join(name);
    sys::obj_get(&path).with_context(|| format!("opening {}", path.display()))
}
