//! libxt_time: `--datestart`, `--datestop`, `--timestart`, `--timestop`, `--contiguous`,
//! `[!] --weekdays`, `[!] --monthdays`, `--kerneltz` (`--localtz`), `--utc`, parsed, printed
//! and saved as libxt_time does, quirks included (two letters of a day's name count, a list's
//! items are cut to libxt_time's buffers).

use std::fmt::Write as _;

use pcn_iptables_common::time::{ALL_MONTHDAYS, ALL_WEEKDAYS, MAX_DAYTIME, flag};

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag as flag_entry};
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::model::{Match, TimeMatch};
use crate::xtables::{param, value};

pub struct TimeExt;

const O_DATE_START: u8 = 0;
const O_DATE_STOP: u8 = 1;
const O_TIME_START: u8 = 2;
const O_TIME_STOP: u8 = 3;
const O_CONTIGUOUS: u8 = 4;
const O_MONTHDAYS: u8 = 5;
const O_WEEKDAYS: u8 = 6;
const O_LOCAL_TZ: u8 = 7;
const O_UTC: u8 = 8;
const O_KERNEL_TZ: u8 = 9;

pub const ENTRIES: [Entry; 10] = [
    entry("datestart", O_DATE_START, false, 0),
    entry("datestop", O_DATE_STOP, false, 0),
    entry("timestart", O_TIME_START, false, 0),
    entry("timestop", O_TIME_STOP, false, 0),
    flag_entry("contiguous", O_CONTIGUOUS),
    entry("weekdays", O_WEEKDAYS, true, 0),
    entry("monthdays", O_MONTHDAYS, true, 0),
    Entry {
        excl: 1 << O_UTC,
        ..flag_entry("localtz", O_LOCAL_TZ)
    },
    Entry {
        excl: 1 << O_LOCAL_TZ | 1 << O_KERNEL_TZ,
        ..flag_entry("utc", O_UTC)
    },
    Entry {
        excl: 1 << O_UTC,
        ..flag_entry("kerneltz", O_KERNEL_TZ)
    },
];

const WEEK_DAYS: [&str; 8] = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl Extension for TimeExt {
    fn name(&self) -> &'static str {
        "time"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Time(TimeMatch {
            date: [0, i32::MAX as u32],
            daytime: [0, MAX_DAYTIME],
            monthdays: ALL_MONTHDAYS,
            weekdays: ALL_WEEKDAYS,
            flags: 0,
        }))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Time(t) = v.as_match() else {
            unreachable!("a time instance holds a time match");
        };
        match id {
            O_DATE_START => t.date[0] = date(arg)? as u32,
            O_DATE_STOP => t.date[1] = date(arg)? as u32,
            O_TIME_START => t.daytime[0] = daytime(arg)?,
            O_TIME_STOP => t.daytime[1] = daytime(arg)?,
            O_CONTIGUOUS => t.flags |= flag::CONTIGUOUS,
            O_MONTHDAYS => t.monthdays = monthdays(arg)? ^ if invert { ALL_MONTHDAYS } else { 0 },
            O_WEEKDAYS => t.weekdays = weekdays(arg)? ^ if invert { ALL_WEEKDAYS } else { 0 },
            O_LOCAL_TZ | O_KERNEL_TZ => {
                if id == O_LOCAL_TZ {
                    eprintln!(
                        "WARNING: --localtz is being replaced by --kerneltz, since \"local\" is \
                         ambiguous. Note the kernel timezone has caveats - see manpage for \
                         details."
                    );
                }
                t.flags |= flag::LOCAL_TZ;
            }
            _ => {}
        }
        Ok(())
    }

    fn check(&self, xflags: u32, v: &mut Value) -> Result<()> {
        let Value::Match(Match::Time(t)) = v else {
            return Ok(());
        };
        if xflags & 1 << O_CONTIGUOUS != 0 && t.daytime[0] < t.daytime[1] {
            return Err(param(
                "time: --contiguous only makes sense when stoptime is smaller than starttime",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Time(t) = m else { return };
        if t.daytime != [0, MAX_DAYTIME] {
            let _ = write!(out, " --timestart {}", hms(t.daytime[0]));
            let _ = write!(out, " --timestop {}", hms(t.daytime[1]));
        }
        if t.monthdays != ALL_MONTHDAYS {
            out.push_str(" --monthdays");
            monthday_list(t.monthdays, false, out);
        }
        if t.weekdays != ALL_WEEKDAYS {
            out.push_str(" --weekdays");
            weekday_list(t.weekdays, out);
        }
        for (option, date) in [("--datestart", t.date[0]), ("--datestop", t.date[1])] {
            if date != 0 {
                let _ = write!(out, " {option} {}", ymd_hms(date, 'T'));
            }
        }
        if t.flags & flag::LOCAL_TZ != 0 {
            out.push_str(" --kerneltz");
        }
        if t.flags & flag::CONTIGUOUS != 0 {
            out.push_str(" --contiguous");
        }
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Time(t) = m else { return };
        out.push_str(" TIME");
        if t.daytime != [0, MAX_DAYTIME] {
            let _ = write!(out, " from {} to {}", hms(t.daytime[0]), hms(t.daytime[1]));
        }
        if t.weekdays != ALL_WEEKDAYS {
            out.push_str(" on");
            weekday_list(t.weekdays, out);
        }
        if t.monthdays != ALL_MONTHDAYS {
            out.push_str(" on");
            monthday_list(t.monthdays, true, out);
        }
        if t.date[0] != 0 {
            let _ = write!(out, " starting from {}", ymd_hms(t.date[0], ' '));
        }
        if t.date[1] != i32::MAX as u32 {
            let _ = write!(out, " until date {}", ymd_hms(t.date[1], ' '));
        }
        if t.flags & flag::LOCAL_TZ == 0 {
            out.push_str(" UTC");
        }
        if t.flags & flag::CONTIGUOUS != 0 {
            out.push_str(" contiguous");
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Time(t), Field::Time) => Some(Want::Time(*t)),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// `strtoul(s, &end, base)` (10, or 0 for a C literal): the value (0 without digits) and
/// where it stopped.
fn strtoul(s: &str, c_literal: bool) -> (u64, &str) {
    let n = if c_literal {
        value::c_number(s)
    } else {
        value::decimal_number(s)
    };
    n.map_or((0, s), |n| (n.value(), n.rest))
}

/// libxt_time's `time_parse_date`: YYYY[-MM[-DD[Thh[:mm[:ss]]]]], then `mktime` in UTC, which
/// takes a month 0 or a day 0 or 31 of a shorter month as the days next to them.
fn date(arg: &str) -> Result<i64> {
    let invalid = || {
        param(format!(
            "Invalid date \"{arg}\" specified. Should be YYYY[-MM[-DD[Thh[:mm[:ss]]]]]"
        ))
    };
    // Each field: its bound and the character that may follow it (or the end).
    const FIELDS: [(u64, u64, Option<char>); 6] = [
        (1970, 2038, Some('-')),
        (0, 12, Some('-')),
        (0, 31, Some('T')),
        (0, 23, Some(':')),
        (0, 59, Some(':')),
        (0, 59, None),
    ];
    let mut v = [1970i64, 1, 1, 0, 0, 0];
    let mut s = arg;
    for (i, (min, max, next)) in FIELDS.iter().enumerate() {
        let (n, rest) = strtoul(s, false);
        let n = n as u32 as u64;
        let ends = rest.is_empty();
        if !(ends || next.is_some_and(|c| rest.starts_with(c))) || n < *min || n > *max {
            return Err(invalid());
        }
        v[i] = n as i64;
        if ends {
            break;
        }
        s = &rest[1..];
    }
    let secs = timegm(v);
    if secs < 0 {
        return Err(Error::raw(
            OTHER_PROBLEM,
            "mktime returned an error".to_string(),
        ));
    }
    Ok(secs)
}

/// Seconds since the epoch of `[year, month, day, hour, minute, second]`, the month and day
/// normalized as `mktime(3)` does.
fn timegm([year, month, day, h, m, s]: [i64; 6]) -> i64 {
    let months = year * 12 + month - 1;
    let (y, mon) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    // Howard Hinnant's days_from_civil.
    let y = if mon <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 + day - 1;
    days * 86_400 + h * 3600 + m * 60 + s
}

/// libxt_time's `time_parse_minutes`: hh:mm[:ss]; its message quotes the text from the field
/// that failed on.
fn daytime(arg: &str) -> Result<u32> {
    let invalid = |s: &str| {
        param(format!(
            "invalid time \"{s}\" specified, should be hh:mm[:ss] format and within the boundaries"
        ))
    };
    let (hour, rest) = strtoul(arg, false);
    if !rest.starts_with(':') || hour as u32 > 23 {
        return Err(invalid(arg));
    }
    let s = &rest[1..];
    let (minute, rest) = strtoul(s, false);
    if !(rest.is_empty() || rest.starts_with(':')) || minute as u32 > 59 {
        return Err(invalid(s));
    }
    let mut second = 0;
    if !rest.is_empty() {
        let s = &rest[1..];
        let (sec, rest) = strtoul(s, false);
        if !rest.is_empty() || sec as u32 > 59 {
            return Err(invalid(s));
        }
        second = sec as u32;
    }
    Ok(hour as u32 * 3600 + minute as u32 * 60 + second)
}

/// libxt_time's `my_strseg`: the comma-separated items, each cut to `len` characters.
fn items(arg: &str, len: usize) -> impl Iterator<Item = &str> {
    let mut rest = (!arg.is_empty()).then_some(arg);
    std::iter::from_fn(move || {
        let s = rest.filter(|s| !s.is_empty())?;
        let (item, next) = match s.split_once(',') {
            Some((item, next)) => (item, Some(next)),
            None => (s, None),
        };
        rest = next;
        Some(&item[..item.floor_char_boundary(len)])
    })
}

fn monthdays(arg: &str) -> Result<u32> {
    let mut days = 0u32;
    for day in items(arg, 2) {
        let (i, rest) = strtoul(day, true);
        if !(rest.is_empty() || rest.starts_with(',')) || i > 31 {
            return Err(param(format!("{day} is not a valid day for --monthdays")));
        }
        days |= 1 << i;
    }
    Ok(days)
}

fn weekdays(arg: &str) -> Result<u8> {
    let mut days = 0u32;
    for day in items(arg, 3) {
        let (i, rest) = strtoul(day, true);
        if rest.is_empty() {
            if i == 0 {
                return Err(param("No, the week does NOT begin with Sunday."));
            }
            days |= 1u32.wrapping_shl(i as u32);
            continue;
        }
        let named: Vec<usize> = (1..WEEK_DAYS.len())
            .filter(|&d| day.as_bytes().get(..2) == Some(&WEEK_DAYS[d].as_bytes()[..2]))
            .collect();
        if named.is_empty() {
            return Err(param(format!("{day} is not a valid day specifier")));
        }
        for d in named {
            days |= 1 << d;
        }
    }
    Ok(days as u8)
}

fn hms(t: u32) -> String {
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// A date as `gmtime` gives it, its date and time joined by `sep`.
fn ymd_hms(date: u32, sep: char) -> String {
    let (year, month, day) = pcn_iptables_common::time::civil(date as u64 / 86_400);
    format!("{year:04}-{month:02}-{day:02}{sep}{}", hms(date % 86_400))
}

fn weekday_list(days: u8, out: &mut String) {
    let names: Vec<&str> = (1..=7)
        .filter(|d| days & 1 << d != 0)
        .map(|d| WEEK_DAYS[d])
        .collect();
    let _ = write!(out, " {}", names.join(","));
}

fn monthday_list(days: u32, ordinals: bool, out: &mut String) {
    let list: Vec<String> = (1..=31u32)
        .filter(|d| days & 1 << d != 0)
        .map(|d| match (ordinals, d % 10) {
            (false, _) => d.to_string(),
            (true, 1) => format!("{d}st"),
            (true, 2) => format!("{d}nd"),
            (true, 3) => format!("{d}rd"),
            (true, _) => format!("{d}th"),
        })
        .collect();
    let _ = write!(out, " {}", list.join(","));
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "time match options:\n",
    "    --datestart time     Start and stop time, to be given in ISO 8601\n",
    "    --datestop time      (YYYY[-MM[-DD[Thh[:mm[:ss]]]]])\n",
    "    --timestart time     Start and stop daytime (hh:mm[:ss])\n",
    "    --timestop time      (between 00:00:00 and 23:59:59)\n",
    "[!] --monthdays value    List of days on which to match, separated by comma\n",
    "                         (Possible days: 1 to 31; defaults to all)\n",
    "[!] --weekdays value     List of weekdays on which to match, sep. by comma\n",
    "                         (Possible days: Mon,Tue,Wed,Thu,Fri,Sat,Sun or 1 to 7\n",
    "                         Defaults to all weekdays.)\n",
    "    --kerneltz           Work with the kernel timezone instead of UTC\n",
);
