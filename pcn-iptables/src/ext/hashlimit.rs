//! libxt_hashlimit (revision 3): `[!] --hashlimit-upto | --hashlimit-above RATE` (packets per
//! second/minute/hour/day, or bytes `Nb/s`, `Nkb/s`, `Nmb/s`), `--hashlimit-burst`,
//! `--hashlimit-mode`, `--hashlimit-srcmask`, `--hashlimit-dstmask`, `--hashlimit-name`,
//! `--hashlimit-htable-size|-max|-gcinterval|-expire`, `--hashlimit-rate-match`,
//! `--hashlimit-rate-interval`. The buckets: `pcn_iptables_common::hashlimit`.

use std::fmt::Write as _;

use pcn_iptables_common::hashlimit::{BYTE_SHIFT, SCALE, in_range, mode, user2credits_byte};

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag, mandatory};
use crate::error::Result;
use crate::model::{Hashlimit, Match};
use crate::xtables::{param, plen, truncate, uint_option, value};

pub struct HashlimitExt;

const O_UPTO: u8 = 0;
const O_ABOVE: u8 = 1;
const O_MODE: u8 = 3;
const O_SRCMASK: u8 = 4;
const O_DSTMASK: u8 = 5;
const O_NAME: u8 = 6;
const O_BURST: u8 = 7;
const O_SIZE: u8 = 8;
const O_MAX: u8 = 9;
const O_GCINT: u8 = 10;
const O_EXPIRE: u8 = 11;
const O_RATEMATCH: u8 = 12;
const O_INTERVAL: u8 = 13;
const F_UPTO: u32 = 1 << O_UPTO;
const F_ABOVE: u32 = 1 << O_ABOVE;

pub const ENTRIES: [Entry; 14] = [
    entry("hashlimit-upto", O_UPTO, true, F_ABOVE),
    entry("hashlimit-above", O_ABOVE, true, F_UPTO),
    entry("hashlimit", O_UPTO, true, F_ABOVE),
    entry("hashlimit-srcmask", O_SRCMASK, false, 0),
    entry("hashlimit-dstmask", O_DSTMASK, false, 0),
    entry("hashlimit-burst", O_BURST, false, 0),
    entry("hashlimit-htable-size", O_SIZE, false, 0),
    entry("hashlimit-htable-max", O_MAX, false, 0),
    entry("hashlimit-htable-gcinterval", O_GCINT, false, 0),
    entry("hashlimit-htable-expire", O_EXPIRE, false, 0),
    entry("hashlimit-mode", O_MODE, false, 0),
    mandatory("hashlimit-name", O_NAME, false),
    flag("hashlimit-rate-match", O_RATEMATCH),
    entry("hashlimit-rate-interval", O_INTERVAL, false, 0),
];

/// xt_hashlimit's name buffer (NAME_MAX), with its NUL.
const NAME_LEN: usize = 255;
const BURST_MAX: u64 = 1_000_000;
/// Seconds a byte rate's entry lives unless told (XT_HASHLIMIT_BYTE_EXPIRE, _BURST).
const BYTE_EXPIRE: u32 = 15;
const BYTE_EXPIRE_BURST: u32 = 60;
const GC_INTERVAL: u32 = 1000;
/// The kernel's HASHLIMIT_MAX_SIZE: larger sizes are cut to it.
const MAX_SIZE: u32 = 1_048_576;

impl Extension for HashlimitExt {
    fn name(&self) -> &'static str {
        "hashlimit"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Hashlimit(Hashlimit {
            burst: 5,
            gc_interval: GC_INTERVAL,
            srcmask: 32,
            dstmask: 32,
            ..Hashlimit::default()
        }))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Hashlimit(h) = v.as_match() else {
            unreachable!("a hashlimit instance holds a hashlimit match");
        };
        let option = |id: u8| ENTRIES.iter().find(|e| e.id == id).map_or("", |e| e.name);
        let uint = |id: u8| uint_option("hashlimit", option(id), arg, u32::MAX as u64);
        match id {
            O_UPTO | O_ABOVE => {
                if (id == O_ABOVE) != invert {
                    h.mode |= mode::INVERT;
                }
                if let Some((avg, mult)) = parse_bytes(arg)? {
                    (h.avg, h.udata_mult) = (avg, mult);
                    h.mode |= mode::BYTES;
                } else {
                    let name = if id == O_UPTO { "upto" } else { "above" };
                    (h.avg, h.udata_mult) = parse_rate(arg)?.ok_or_else(|| bad(name, arg))?;
                }
            }
            O_MODE => h.mode |= parse_mode(arg).ok_or_else(|| bad("mode", arg))?,
            O_SRCMASK | O_DSTMASK => {
                let len = plen("hashlimit", option(id), arg)?.unwrap_or(u8::MAX);
                *if id == O_SRCMASK {
                    &mut h.srcmask
                } else {
                    &mut h.dstmask
                } = len;
            }
            O_NAME if arg.is_empty() => {
                return Err(param(
                    "Argument must have a minimum length of 1 characters\n",
                ));
            }
            O_NAME => h.name = truncate(arg, NAME_LEN - 1),
            O_BURST => h.burst = parse_burst(arg)?,
            O_SIZE => h.size = uint(id)? as u32,
            O_MAX => h.max = uint(id)? as u32,
            O_GCINT => h.gc_interval = uint(id)? as u32,
            O_EXPIRE => h.expire = uint(id)? as u32,
            O_RATEMATCH => h.mode |= mode::RATE_MATCH,
            _ => {
                // atoi
                let n = value::decimal_number(arg).map_or(0, |n| n.value() as i32);
                h.interval = u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("rate-interval", arg))?;
            }
        }
        Ok(())
    }

    /// `hashlimit_mt_check`: the defaults that depend on the rate, the burst of a byte rate
    /// in buckets.
    fn check(&self, xflags: u32, v: &mut Value) -> Result<()> {
        let Match::Hashlimit(h) = v.as_match() else {
            return Ok(());
        };
        if xflags & (F_UPTO | F_ABOVE) == 0 {
            return Err(param("You have to specify --hashlimit"));
        }
        let mult = std::mem::take(&mut h.udata_mult);
        let expire_given = xflags & 1 << O_EXPIRE != 0;
        if !expire_given {
            h.expire = mult.wrapping_mul(1000);
        }
        if h.mode & mode::BYTES != 0 {
            let mut burst = 0u32;
            if xflags & 1 << O_BURST != 0 {
                let unit = cost_to_bytes(h.avg);
                if h.burst < unit {
                    return Err(param(format!("burst cannot be smaller than {unit}b")));
                }
                burst = (h.burst as u32) / unit as u32;
                if h.burst % unit != 0 {
                    burst += 1;
                }
                if !expire_given {
                    h.expire = BYTE_EXPIRE_BURST * 1000;
                }
            }
            h.burst = burst as u64;
        } else if h.burst > BURST_MAX {
            return Err(burst_error());
        }
        if h.mode & mode::RATE_MATCH != 0 {
            if h.mode & mode::BYTES == 0 {
                h.avg /= mult.max(1) as u64;
            }
            if h.interval == 0 {
                h.interval = if h.mode & mode::BYTES != 0 { 1 } else { mult };
            }
        }
        Ok(())
    }

    /// The kernel cuts the table's size and maximum to its own, and the rule keeps them so.
    fn canonical(&self, m: Match) -> Result<Match> {
        let Match::Hashlimit(mut h) = m else {
            return Ok(m);
        };
        h.size = h.size.min(MAX_SIZE);
        h.max = h.max.min(MAX_SIZE);
        Ok(Match::Hashlimit(h))
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Hashlimit(h) = m else { return };
        let above = h.mode & mode::INVERT != 0;
        out.push_str(if above {
            " --hashlimit-above"
        } else {
            " --hashlimit-upto"
        });
        let quantum = if h.mode & mode::BYTES != 0 {
            print_bytes(h.avg, h.burst, "--hashlimit-", out)
        } else {
            let q = print_rate(h.avg, out);
            let _ = write!(out, " --hashlimit-burst {}", h.burst);
            q
        };
        if h.mode & mode::KEYS != 0 {
            out.push_str(" --hashlimit-mode");
            print_mode(h.mode, ',', out);
        }
        let _ = write!(out, " --hashlimit-name {}", h.name);
        tail(h, quantum, "--hashlimit-", out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Hashlimit(h) = m else { return };
        let above = h.mode & mode::INVERT != 0;
        out.push_str(if above {
            " limit: above"
        } else {
            " limit: up to"
        });
        let quantum = if h.mode & mode::BYTES != 0 {
            print_bytes(h.avg, h.burst, "", out)
        } else {
            let period = match h.interval {
                0 => h.avg,
                i => h.avg.wrapping_mul(i as u64),
            };
            let q = print_rate(period, out);
            let _ = write!(out, " burst {}", h.burst);
            q
        };
        if h.mode & mode::KEYS != 0 {
            out.push_str(" mode");
            print_mode(h.mode, '-', out);
        }
        tail(h, quantum, "", out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Hashlimit(h), Field::Hashlimit) => Some(Want::Hashlimit(h.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// What `hashlimit_mt_check_common` answers for `h` on a kernel of `hz`: `None` when it
/// takes the rule, else its errno's text.
pub fn kernel_refuses(h: &Hashlimit, hz: u64) -> Option<&'static str> {
    const EINVAL: &str = "Invalid argument. Run `dmesg' for more information";
    const ERANGE: &str = "Numerical result out of range";
    let proc_name_ok =
        !(h.name.is_empty() || h.name == "." || h.name == ".." || h.name.contains('/'));
    if !proc_name_ok || h.gc_interval == 0 || h.expire == 0 || h.srcmask > 32 || h.dstmask > 32 {
        return Some(EINVAL);
    }
    if h.mode & mode::RATE_MATCH != 0 {
        return if h.avg == 0 || h.avg > u32::MAX as u64 {
            Some(ERANGE)
        } else if h.interval == 0 {
            Some(EINVAL)
        } else {
            None
        };
    }
    if h.mode & mode::BYTES != 0 {
        return (user2credits_byte(h.avg as u32, hz) == 0).then_some(EINVAL);
    }
    (!in_range(&h.config(), hz)).then_some(ERANGE)
}

fn bad(option: &str, arg: &str) -> crate::error::Error {
    param(format!(
        "hashlimit: Bad value for \"--hashlimit-{option}\" option: \"{arg}\""
    ))
}

fn burst_error() -> crate::error::Error {
    param(format!(
        "bad value for option \"--hashlimit-burst\", or out of range (1-{BURST_MAX})."
    ))
}

/// C's `atoll`: a decimal number after blanks, with a sign.
fn atoll(s: &str) -> u64 {
    match value::decimal_number(s) {
        Some(n) if n.magnitude.is_none() => {
            if n.negative {
                i64::MIN as u64
            } else {
                i64::MAX as u64
            }
        }
        Some(n) => n.value(),
        None => 0,
    }
}

/// `parse_rate`: `N[/second|/minute|/hour|/day]` (a prefix of the unit, any case): the
/// microseconds a packet, and the unit in seconds.
fn parse_rate(rate: &str) -> Result<Option<(u64, u32)>> {
    let mult = match rate.split_once('/') {
        None => 1,
        Some((_, "")) => return Ok(None),
        Some((_, unit)) => {
            let units = [
                ("second", 1),
                ("minute", 60),
                ("hour", 3600),
                ("day", 86400),
            ];
            let prefix_of = |word: &str| {
                unit.len() <= word.len() && word[..unit.len()].eq_ignore_ascii_case(unit)
            };
            match units.iter().find(|(w, _)| prefix_of(w)) {
                Some((_, m)) => *m,
                None => return Ok(None),
            }
        }
    };
    let r = atoll(rate);
    if r == 0 {
        return Ok(None);
    }
    let avg = (SCALE * mult as u64) / r;
    if avg == 0 {
        return Err(param(format!("Rate too fast \"{rate}\"")));
    }
    Ok(Some((avg, mult)))
}

fn factor(c: Option<u8>) -> u64 {
    match c {
        Some(b'm') => 1024 * 1024,
        Some(b'k') => 1024,
        _ => 1,
    }
}

fn bytes_to_cost(bytes: u64) -> u64 {
    let r = (bytes >> BYTE_SHIFT) as u32;
    (u32::MAX).checked_div(r.wrapping_add(1)).unwrap_or(0) as u64
}

fn cost_to_bytes(cost: u64) -> u64 {
    let r = (u32::MAX as u64)
        .checked_div(cost)
        .unwrap_or(u32::MAX as u64);
    r.wrapping_sub(1) << BYTE_SHIFT
}

/// `parse_bytes`: `N[k|m]b/s`: the cost, and the byte expiry (`None`: no byte rate).
fn parse_bytes(rate: &str) -> Result<Option<(u64, u32)>> {
    let Some(at) = rate.find("b/s").filter(|at| *at > 0) else {
        return Ok(None);
    };
    let r = atoll(rate);
    if r == 0 {
        return Ok(None);
    }
    let bytes = r.wrapping_mul(factor(rate.as_bytes().get(at - 1).copied()));
    let cost = bytes_to_cost(bytes);
    if cost == 0 {
        return Err(param(format!("Rate too high \"{rate}\"")));
    }
    Ok(Some((cost, BYTE_EXPIRE)))
}

/// `parse_burst`: a number (any base) of at least 1, then maybe `k` or `m` (a multiplier,
/// the range then unchecked).
fn parse_burst(arg: &str) -> Result<u64> {
    let n = value::c_number(arg).filter(|n| n.magnitude.is_some() && n.value() >= 1);
    let Some(n) = n else {
        return Err(burst_error());
    };
    if n.rest.is_empty() && n.value() > BURST_MAX {
        return Err(burst_error());
    }
    Ok(n.value().wrapping_mul(factor(n.rest.bytes().next())))
}

/// `parse_mode`: names split at `,` or `|`.
fn parse_mode(arg: &str) -> Option<u32> {
    arg.split([',', '|'])
        .filter(|t| !t.is_empty())
        .try_fold(0, |m, t| {
            Some(
                m | match t {
                    "dstip" => mode::DIP,
                    "srcip" => mode::SIP,
                    "srcport" => mode::SPT,
                    "dstport" => mode::DPT,
                    _ => return None,
                },
            )
        })
}

fn print_mode(m: u32, separator: char, out: &mut String) {
    let names = [
        (mode::SIP, "srcip"),
        (mode::SPT, "srcport"),
        (mode::DIP, "dstip"),
        (mode::DPT, "dstport"),
    ];
    let on: Vec<&str> = names
        .iter()
        .filter(|(b, _)| m & b != 0)
        .map(|(_, n)| *n)
        .collect();
    let _ = write!(out, " {}", on.join(&separator.to_string()));
}

/// `print_rate`: the rate in the largest unit that shows it well; its unit in milliseconds.
fn print_rate(period: u64, out: &mut String) -> u32 {
    if period == 0 {
        out.push_str(" inf");
        return 0;
    }
    let rates = [
        ("day", SCALE * 86400),
        ("hour", SCALE * 3600),
        ("min", SCALE * 60),
        ("sec", SCALE),
    ];
    let i = (1..rates.len())
        .find(|&i| {
            let m = rates[i].1;
            period > m || m / period < m % period
        })
        .unwrap_or(rates.len());
    let (name, mult) = rates[i - 1];
    let _ = write!(out, " {}/{name}", mult / period);
    (mult / SCALE * 1000) as u32
}

/// `print_bytes`: the byte rate and burst; the default expiry in milliseconds.
fn print_bytes(avg: u64, burst: u64, prefix: &str, out: &mut String) -> u32 {
    let units: [(&str, u32); 3] = [("m", 1024 * 1024), ("k", 1024), ("", 1)];
    let r = cost_to_bytes(avg);
    // libxt masks with a 32-bit complement, which clears the upper half.
    let i = (0..2)
        .find(|&i| {
            let t = units[i].1;
            r >= t as u64 && bytes_to_cost(r & !(t - 1) as u64) == avg
        })
        .unwrap_or(2);
    let _ = write!(out, " {}{}b/s", r / units[i].1 as u64, units[i].0);
    if burst == 0 {
        return BYTE_EXPIRE * 1000;
    }
    let r = r.wrapping_mul(burst);
    let i = (0..2).find(|&i| r >= units[i].1 as u64).unwrap_or(2);
    let _ = write!(
        out,
        " {prefix}burst {}{}b",
        r / units[i].1 as u64,
        units[i].0
    );
    BYTE_EXPIRE_BURST * 1000
}

/// The options after the name, printed where they differ from their defaults.
fn tail(h: &Hashlimit, quantum: u32, prefix: &str, out: &mut String) {
    let pairs = [
        (h.size != 0, "htable-size", h.size),
        (h.max != 0, "htable-max", h.max),
        (
            h.gc_interval != GC_INTERVAL,
            "htable-gcinterval",
            h.gc_interval,
        ),
        (h.expire != quantum, "htable-expire", h.expire),
        (h.srcmask != 32, "srcmask", h.srcmask as u32),
        (h.dstmask != 32, "dstmask", h.dstmask as u32),
    ];
    for (_, name, v) in pairs.iter().filter(|(on, ..)| *on) {
        let _ = write!(out, " {prefix}{name} {v}");
    }
    if h.mode & mode::RATE_MATCH != 0 {
        let _ = write!(out, " {prefix}rate-match");
        if h.interval != 1 {
            let _ = write!(out, " {prefix}rate-interval {}", h.interval);
        }
    }
}

/// libxt's help text (revision 3).
pub const HELP: &str = concat!(
    "\n",
    "hashlimit match options:\n",
    "  --hashlimit-upto <avg>           max average match rate\n",
    "                                   [Packets per second unless followed by \n",
    "                                   /sec /minute /hour /day postfixes]\n",
    "  --hashlimit-above <avg>          min average match rate\n",
    "  --hashlimit-mode <mode>          mode is a comma-separated list of\n",
    "                                   dstip,srcip,dstport,srcport (or none)\n",
    "  --hashlimit-srcmask <length>     source address grouping prefix length\n",
    "  --hashlimit-dstmask <length>     destination address grouping prefix length\n",
    "  --hashlimit-name <name>          name for /proc/net/ipt_hashlimit\n",
    "  --hashlimit-burst <num>\t    number to match in a burst, default 5\n",
    "  --hashlimit-htable-size <num>    number of hashtable buckets\n",
    "  --hashlimit-htable-max <num>     number of hashtable entries\n",
    "  --hashlimit-htable-gcinterval    interval between garbage collection runs\n",
    "  --hashlimit-htable-expire        after which time are idle entries expired?\n",
    "  --hashlimit-rate-match           rate match the flow without rate-limiting it\n",
    "  --hashlimit-rate-interval        interval in seconds for hashlimit-rate-match\n",
    "\n",
);
