//! libxt_limit: `--limit N[/second|/minute|/hour|/day]` (any prefix of the unit) and
//! `--limit-burst`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry};
use crate::error::Result;
use crate::model::{Limit, Match};

pub struct LimitExt;

impl Extension for LimitExt {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Limit(Limit::DEFAULT))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), id, arg)
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Limit(l) = m else { return };
        let _ = write!(out, " --limit {}", format_rate(l.avg));
        if l.burst != Limit::DEFAULT.burst {
            let _ = write!(out, " --limit-burst {}", l.burst);
        }
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Limit(l) = m else { return };
        let _ = write!(out, " limit: avg {} burst {}", format_rate(l.avg), l.burst);
    }

    /// A token bucket in front of the rule's action.
    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Limit(l), Field::Limit) => Some(Want::Limit(*l)),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

pub const ENTRIES: [Entry; 2] = [
    entry("limit", 0, false, 0),
    entry("limit-burst", 1, false, 0),
];

/// libxt_limit's largest burst.
const MAX_BURST: u64 = 10000;

pub fn parse(m: &mut Match, id: u8, text: &str) -> Result<()> {
    let Match::Limit(limit) = m else {
        unreachable!("a limit instance holds a limit");
    };
    match id {
        0 => limit.avg = parse_rate(text)?,
        _ => {
            limit.burst =
                crate::xtables::uint_option("limit", "limit-burst", text, MAX_BURST)? as u32
        }
    }
    Ok(())
}

/// `parse_rate`: the period in 1/10000 s.
fn parse_rate(text: &str) -> Result<u32> {
    let bad = || crate::xtables::param(format!("bad rate \"{text}\"'"));
    let mult: u32 = match text.split_once('/') {
        None => 1,
        Some((_, unit)) => {
            let is = |name: &str| {
                !unit.is_empty()
                    && unit.len() <= name.len()
                    && name.as_bytes()[..unit.len()].eq_ignore_ascii_case(unit.as_bytes())
            };
            if is("second") {
                1
            } else if is("minute") {
                60
            } else if is("hour") {
                60 * 60
            } else if is("day") {
                24 * 60 * 60
            } else {
                return Err(bad());
            }
        }
    };
    // atoi: the leading decimal number, as a C int, here stored in a uint32_t.
    let r = crate::xtables::value::decimal_number(text).map_or(0, |n| n.value() as i32 as u32);
    if r == 0 {
        return Err(bad());
    }
    let avg = Limit::SCALE * mult / r;
    if avg == 0 {
        return Err(crate::xtables::param(format!("Rate too fast \"{text}\"")));
    }
    Ok(avg)
}

/// libxt_limit's `print_rate`: the largest unit that shows the period without losing much.
pub fn format_rate(avg: u32) -> String {
    const RATES: [(&str, u32); 4] = [
        ("day", Limit::SCALE * 24 * 60 * 60),
        ("hour", Limit::SCALE * 60 * 60),
        ("min", Limit::SCALE * 60),
        ("sec", Limit::SCALE),
    ];
    if avg == 0 {
        return "inf".into();
    }
    let i = (1..RATES.len())
        .find(|&i| avg > RATES[i].1 || RATES[i].1 / avg < RATES[i].1 % avg)
        .unwrap_or(RATES.len());
    let (name, mult) = RATES[i - 1];
    format!("{}/{name}", mult / avg)
}

/// xt_limit's `limit_mt_check`: a burst of 0, or one whose credit overflows, is ERANGE.
pub fn kernel_accepts(limit: &Limit) -> bool {
    // user2credits with HZ * CREDITS_PER_JIFFY, which is 32000 for HZ 250 and 1000 alike.
    const HZ_CPJ: u64 = 32000;
    let credits = |user: u32| -> u64 {
        let user = user as u64;
        if user > u32::MAX as u64 / HZ_CPJ {
            ((user / Limit::SCALE as u64) * HZ_CPJ) & u32::MAX as u64
        } else {
            (user * HZ_CPJ) / Limit::SCALE as u64
        }
    };
    limit.burst != 0 && credits(limit.avg.wrapping_mul(limit.burst)) >= credits(limit.avg)
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "limit match options:\n",
    "--limit avg\t\t\tmax average match rate: default 3/hour\n",
    "                                [Packets per second unless followed by \n",
    "                                /sec /minute /hour /day postfixes]\n",
    "--limit-burst number\t\tnumber to match in a burst, default 5\n",
);
