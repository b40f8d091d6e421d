//! `PCN_SETTINGS`: what userspace tells the data plane at every change (the namespace's ICMP
//! rate limit sysctls, the kernel structure offsets `--log-uid` reads). Pinned: shared by
//! every generation and build.

use aya_ebpf::{macros::map, maps::Array};
use pcn_iptables_common::Settings;

#[map]
static PCN_SETTINGS: Array<Settings> = Array::pinned(1, 0);

/// The settings, `None` until userspace wrote them.
#[inline(always)]
pub fn get() -> Option<&'static Settings> {
    PCN_SETTINGS.get(0).filter(|s| s.set != 0)
}
