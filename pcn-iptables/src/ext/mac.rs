//! libxt_mac: `--mac-source XX:XX:XX:XX:XX:XX`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, mandatory};
use crate::error::Result;
use crate::model::{Match, Negatable};

pub struct Mac;

impl Extension for Mac {
    fn name(&self) -> &'static str {
        "mac"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Mac(Negatable::plain([0; 6])))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), arg, invert)
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Mac(m) = m else { return };
        let _ = write!(out, "{} --mac-source {}", bang(m.negated), format(&m.value));
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Mac(m) = m else { return };
        let _ = write!(out, " MAC{} {}", bang(m.negated), format(&m.value));
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Mac(m), Field::MacSource) => Some(Want::Mac(m.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

pub const ENTRIES: [Entry; 1] = [mandatory("mac-source", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Mac(Negatable {
        value: parse_mac(text)
            .ok_or_else(|| crate::xtables::param("Invalid MAC address specified."))?,
        negated: invert,
    });
    Ok(())
}

/// libxtables' `xtopt_parse_ethermac`: six `strtoul(.., 16)` numbers separated by colons,
/// each taking at most two characters (blanks, sign and `0x` count; a component without a
/// digit is 0).
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut arg = text;
    for (i, byte) in mac.iter_mut().enumerate() {
        let (value, taken) = strtoul_hex(arg);
        let end = &arg[taken..];
        let last = i == 5;
        if taken > 2 || (last && !end.is_empty()) || (!last && !end.starts_with(':')) {
            return None;
        }
        *byte = value;
        arg = end.get(1..).unwrap_or_default();
    }
    Some(mac)
}

/// glibc's `strtoul(s, &end, 16)`: blanks, a sign, `0x` when a hex digit follows, hex digits.
/// The value as a byte (C's wrap-around, `-1` is ff) and how many bytes it took: none when
/// there is no digit.
fn strtoul_hex(s: &str) -> (u8, usize) {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    let mut i = 0;
    while b
        .get(i)
        .is_some_and(|c| crate::xtables::value::is_c_space(*c as char))
    {
        i += 1;
    }
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) && hex(i + 2) {
        i += 2;
    }
    let start = i;
    let mut value = 0u64;
    while hex(i) {
        value = value.wrapping_mul(16) + (b[i] as char).to_digit(16).unwrap_or(0) as u64;
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    let value = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    (value as u8, i)
}

/// How `-S` and `-L` show an address.
pub fn format(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "mac match options:\n",
    "[!] --mac-source XX:XX:XX:XX:XX:XX\n",
    "\t\t\t\tMatch source MAC address\n",
);
