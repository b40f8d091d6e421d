//! `-m time`: xt_time's `time_mt` on the time the packet is judged (UTC seconds, from the
//! data plane's CLOCK_TAI less the TAI offset userspace reads at every change), with the
//! kernel's own calendar arithmetic (`localtime_1/2/3`).

use crate::Action;

/// Every day of the month (bits 1..=31), every day of the week (bits 1..=7, Monday first).
pub const ALL_MONTHDAYS: u32 = 0xffff_fffe;
pub const ALL_WEEKDAYS: u8 = 0xfe;
pub const MAX_DAYTIME: u32 = 24 * 60 * 60 - 1;
const DAY: u64 = 24 * 60 * 60;

/// `Action::time_flags`
pub mod flag {
    /// The kernel's timezone (`--kerneltz`), not UTC.
    pub const LOCAL_TZ: u8 = 1;
    /// A daytime range across midnight counts for the day it started (`--contiguous`).
    pub const CONTIGUOUS: u8 = 2;
    /// The rule has `-m time`.
    pub const ON: u8 = 0x80;
}

/// The year, month and day of day `dse` since 1970-01-01 in the civil calendar (Howard
/// Hinnant's `civil_from_days`: days from 0000-03-01, in 400-year eras).
#[inline(always)]
pub fn civil(dse: u64) -> (u64, u32, u32) {
    let z = dse + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = era * 400 + yoe + (month <= 2) as u64;
    (year, month, day)
}

/// The day of the month of day `dse` since 1970-01-01 (as the kernel's tables give it up to
/// 2039).
#[inline(always)]
pub fn monthday(dse: u64) -> u32 {
    civil(dse).2
}

/// Whether the packet judged at `utc` (seconds) matches rule action `a`'s `-m time`; the
/// kernel's timezone is `tz_minutes_west` of UTC.
#[inline(always)]
pub fn matches(a: &Action, utc: u64, tz_minutes_west: i32) -> bool {
    let mut stamp = utc as i64;
    if a.time_flags & flag::LOCAL_TZ != 0 {
        stamp -= 60 * tz_minutes_west as i64;
    }
    if stamp < a.time_date[0] as i64 || stamp > a.time_date[1] as i64 {
        return false;
    }
    let daytime = (stamp as u64 % DAY) as u32;
    let (start, stop) = (a.time_daytime[0], a.time_daytime[1]);
    if start < stop {
        if daytime < start || daytime > stop {
            return false;
        }
    } else {
        if daytime < start && daytime > stop {
            return false;
        }
        if a.time_flags & flag::CONTIGUOUS != 0 && daytime <= stop {
            stamp -= DAY as i64;
        }
    }
    let dse = stamp as u64 / DAY;
    let weekday = (4 + dse - 1) % 7 + 1;
    if a.time_weekdays & (1 << weekday) == 0 {
        return false;
    }
    a.time_monthdays == ALL_MONTHDAYS || a.time_monthdays & (1 << monthday(dse)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xt_time's `localtime_3`, line by line: its table of days since the epoch at each
    /// year's start (2039 down to 1970), then the month's.
    fn kernel_monthday(dse: u64) -> u32 {
        let is_leap =
            |y: u64| y.is_multiple_of(400) || (y.is_multiple_of(4) && !y.is_multiple_of(100));
        let mut days_since_epoch = [0u64; 70];
        for (i, year) in (1970..2040).rev().enumerate() {
            days_since_epoch[i] = (1970..year).map(|y| 365 + is_leap(y) as u64).sum();
        }
        let days_since_year = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let days_since_leapyear = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335];
        let (mut i, mut year) = (0, 2039);
        while days_since_epoch[i] > dse {
            i += 1;
            year -= 1;
        }
        let w = dse - days_since_epoch[i];
        let table = if is_leap(year) {
            days_since_leapyear
        } else {
            days_since_year
        };
        let mut m = 11;
        while m > 0 && table[m] > w {
            m -= 1;
        }
        (w - table[m] + 1) as u32
    }

    #[test]
    fn monthdays_as_the_kernel_counts_them() {
        // 1970-01-01 to 2039-12-31.
        for dse in 0..25_567 {
            assert_eq!(monthday(dse), kernel_monthday(dse), "day {dse}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_794), (2026, 12, 7));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }

    fn rule(date: [u32; 2], daytime: [u32; 2], weekdays: u8, monthdays: u32, flags: u8) -> Action {
        Action {
            time_date: date,
            time_daytime: daytime,
            time_weekdays: weekdays,
            time_monthdays: monthdays,
            time_flags: flag::ON | flags,
            ..Default::default()
        }
    }

    #[test]
    fn dates_daytimes_and_days() {
        // 2026-12-07 (a Monday) 09:30:00 UTC.
        let now = 1_796_635_800;
        let all = |daytime| {
            rule(
                [0, i32::MAX as u32],
                daytime,
                ALL_WEEKDAYS,
                ALL_MONTHDAYS,
                0,
            )
        };
        assert!(matches(&all([9 * 3600, 17 * 3600]), now, 0));
        assert!(!matches(&all([10 * 3600, 17 * 3600]), now, 0));
        // Across midnight: 22:00 to 10:00 takes 09:30.
        assert!(matches(&all([22 * 3600, 10 * 3600]), now, 0));
        // The kernel's timezone: 10 hours west makes it 23:30 the day before.
        let mut local = all([9 * 3600, 17 * 3600]);
        assert!(matches(&local, now, 600));
        local.time_flags |= flag::LOCAL_TZ;
        assert!(!matches(&local, now, 600));
        let monday = 1 << 1;
        let on = |weekdays, monthdays, flags| {
            rule(
                [0, i32::MAX as u32],
                [22 * 3600, 10 * 3600],
                weekdays,
                monthdays,
                flags,
            )
        };
        assert!(matches(&on(monday, 1 << 7, 0), now, 0));
        assert!(!matches(&on(1 << 2, ALL_MONTHDAYS, 0), now, 0));
        // --contiguous: 09:30 Monday belongs to Sunday's 22:00 start (the 6th).
        assert!(matches(&on(1 << 7, 1 << 6, flag::CONTIGUOUS), now, 0));
        assert!(!matches(
            &on(monday, ALL_MONTHDAYS, flag::CONTIGUOUS),
            now,
            0
        ));
        let dated = |from, to| rule([from, to], [0, MAX_DAYTIME], ALL_WEEKDAYS, ALL_MONTHDAYS, 0);
        assert!(matches(&dated(now as u32, now as u32), now, 0));
        assert!(!matches(&dated(now as u32 + 1, i32::MAX as u32), now, 0));
    }
}
