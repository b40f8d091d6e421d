//! libxt_statistic: `--mode random --probability P` and `--mode nth --every N --packet P`,
//! each with `!`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, mandatory};
use crate::error::Result;
use crate::model::{Match, Negatable, Statistic};
use crate::xtables::{param, value::xtables_uint};

pub struct StatisticExt;

const O_PROBABILITY: u8 = 1;
const O_EVERY: u8 = 2;
const O_PACKET: u8 = 3;
const F_PROBABILITY: u32 = 1 << O_PROBABILITY;
const F_EVERY: u32 = 1 << O_EVERY;
const F_PACKET: u32 = 1 << O_PACKET;

pub const ENTRIES: [Entry; 4] = [
    mandatory("mode", 0, false),
    entry("probability", O_PROBABILITY, true, F_EVERY | F_PACKET),
    Entry {
        also: F_PACKET,
        ..entry("every", O_EVERY, true, F_PROBABILITY)
    },
    Entry {
        also: F_EVERY,
        ..entry("packet", O_PACKET, false, F_PROBABILITY)
    },
];

impl Extension for StatisticExt {
    fn name(&self) -> &'static str {
        "statistic"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Statistic(Negatable::plain(Statistic::default())))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Statistic(s) = v.as_match() else {
            unreachable!("a statistic instance holds a statistic");
        };
        s.negated |= invert;
        let s = &mut s.value;
        let bad = |option: &str, range: &str| {
            param(format!(
                "statistic: bad value for option \"--{option}\", or out of range ({range}).\n"
            ))
        };
        match id {
            0 => match arg {
                "random" => s.nth = false,
                "nth" => s.nth = true,
                _ => return Err(param(format!("Bad mode \"{arg}\""))),
            },
            O_PROBABILITY => {
                let p = strtod(arg)
                    .filter(|p| !(*p < 0.0 || *p > 1.0))
                    .ok_or_else(|| bad("probability", "0-1"))?;
                s.probability = (p * f64::from(0x8000_0000u32)).round() as u32;
            }
            O_EVERY => {
                let n = xtables_uint(arg, 1, u32::MAX as u64)
                    .ok_or_else(|| bad("every", "1-4294967295"))?;
                s.every = n as u32 - 1;
            }
            _ => {
                s.packet = xtables_uint(arg, 0, u32::MAX as u64)
                    .ok_or_else(|| bad("packet", "0-4294967295"))?
                    as u32;
            }
        }
        Ok(())
    }

    fn check(&self, xflags: u32, v: &mut Value) -> Result<()> {
        let Value::Match(Match::Statistic(s)) = v else {
            return Ok(());
        };
        let s = &s.value;
        if !s.nth && xflags & F_PROBABILITY == 0 {
            return Err(param(
                "--probability must be specified when using random mode",
            ));
        }
        if s.nth && xflags & (F_EVERY | F_PACKET) == 0 {
            return Err(param(
                "--every and --packet must be specified when using nth mode",
            ));
        }
        if s.packet > s.every {
            return Err(param("the --packet p must be 0 <= p <= n-1"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        print_match(m, "--", out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        out.push_str(" statistic");
        print_match(m, "", out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Statistic(s), Field::Statistic) => Some(Want::Statistic(s.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxt_statistic's `print_match`, for `-L` (no prefix) and save (`--`).
fn print_match(m: &Match, prefix: &str, out: &mut String) {
    let Match::Statistic(s) = m else { return };
    let bang = if s.negated { " !" } else { "" };
    let v = &s.value;
    if v.nth {
        let _ = write!(
            out,
            " {prefix}mode nth{bang} {prefix}every {}",
            v.every as u64 + 1
        );
        if v.packet != 0 || !prefix.is_empty() {
            let _ = write!(out, " {prefix}packet {}", v.packet);
        }
    } else {
        let p = f64::from(v.probability) / f64::from(0x8000_0000u32);
        let _ = write!(
            out,
            " {prefix}mode random{bang} {prefix}probability {p:.11}"
        );
    }
}

/// `strtod(3)` of the whole text (decimal, exponent and hexadecimal forms, as libxtables'
/// XTTYPE_DOUBLE takes them).
fn strtod(text: &str) -> Option<f64> {
    let c = std::ffi::CString::new(text).ok()?;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: a NUL-terminated string, and a pointer strtod sets inside it.
    let v = unsafe { libc::strtod(c.as_ptr(), &mut end) };
    // SAFETY: end points into c, at or after its start.
    let used = unsafe { end.offset_from(c.as_ptr()) } as usize;
    (used > 0 && used == text.len()).then_some(v)
}

/// libxt_statistic's help text.
pub const HELP: &str = concat!(
    "\n",
    "statistic match options:\n",
    " --mode mode                    Match mode (random, nth)\n",
    " random mode:\n",
    "[!] --probability p\t\t Probability\n",
    " nth mode:\n",
    "[!] --every n\t\t\t Match every nth packet\n",
    " --packet p\t\t\t Initial counter value (0 <= p <= n-1, default 0)\n",
);
