//! `-m time`: the rule's dates, daytimes and days against the time the packet is judged at,
//! CLOCK_TAI less the TAI offset userspace read at the last change (`settings`).

use aya_ebpf::helpers::generated::bpf_ktime_get_tai_ns;
use pcn_iptables_common::{Action, time};

use crate::settings;

/// Whether rule action `a` passes its `-m time`, if it has one.
#[inline(always)]
pub(crate) fn matches(a: &Action) -> bool {
    if a.time_flags == 0 {
        return true;
    }
    let (tai_offset, tz) = settings::get().map_or((0, 0), |s| (s.tai_offset, s.tz_minutes_west));
    let utc = (unsafe { bpf_ktime_get_tai_ns() } / 1_000_000_000) as i64 - tai_offset as i64;
    time::matches(a, utc as u64, tz)
}
