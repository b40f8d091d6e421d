//! libxt_length: `--length MIN[:MAX]` of the IP total length.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, inv, mandatory};
use crate::error::Result;
use crate::model::{Match, Negatable, PortRange};

pub struct Length;

impl Extension for Length {
    fn name(&self) -> &'static str {
        "length"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Length(Negatable::plain(PortRange {
            first: 0,
            last: u16::MAX,
        })))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), arg, invert)
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Length(l) = m else { return };
        let _ = write!(
            out,
            "{} --length {}",
            bang(l.negated),
            super::api::range(&l.value)
        );
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Length(l) = m else { return };
        let _ = write!(
            out,
            " length {}{}",
            inv(l.negated),
            super::api::range(&l.value)
        );
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::Length(l), Field::Length) = (m, field) else {
            return None;
        };
        Some(Want::ranges(
            [(l.value.first as u32, l.value.last as u32)],
            l.negated,
        ))
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}
use crate::xtables::value::xtables_uint_prefix;

pub const ENTRIES: [Entry; 1] = [mandatory("length", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Length(Negatable {
        value: range(text)?,
        negated: invert,
    });
    Ok(())
}

/// libxtables' `xtopt_parse_mint` for XTTYPE_UINT16RC: `a`, `a:b`, `:b`, `a:`, each number
/// read like strtoul(3) and followed by `:` or the end; a reversed range is taken (it matches
/// nothing).
fn range(text: &str) -> Result<PortRange> {
    let mut values: Vec<u16> = Vec::with_capacity(2);
    let mut arg = text;
    loop {
        if values.len() == 2 {
            return Err(crate::xtables::param(
                "length: Too many components for option \"--length\" (max: 2)\n",
            ));
        }
        let (value, end) = if arg.is_empty() || arg.starts_with(':') {
            // A component left out: 0 first, the maximum second.
            (if values.len() == 1 { u16::MAX } else { 0 }, arg)
        } else {
            let (v, end) = xtables_uint_prefix(arg, u16::MAX as u64).ok_or_else(|| {
                crate::xtables::param(format!(
                    "length: bad value for option \"--length\" near \"{arg}\", or out of range (0-65535).\n"
                ))
            })?;
            if !end.is_empty() && !end.starts_with(':') {
                return Err(crate::xtables::param(format!(
                    "length: Argument to \"--length\" has unexpected characters near \"{end}\".\n"
                )));
            }
            (v as u16, end)
        };
        values.push(value);
        match end.strip_prefix(':') {
            Some(next) => arg = next,
            None => break,
        }
    }
    let first = values[0];
    Ok(PortRange {
        first,
        last: values.get(1).copied().unwrap_or(first),
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "length match options:\n",
    "[!] --length length[:length]    Match packet length against value or range\n",
    "                                of values (inclusive)\n",
);
