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

pub const ENTRIES: [Entry; 1] = [mandatory("length", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Length(Negatable {
        value: range(text)?,
        negated: invert,
    });
    Ok(())
}

/// XTTYPE_UINT16RC (see `xtables::mint_range`).
fn range(text: &str) -> Result<PortRange> {
    let (first, last) = crate::xtables::mint_range("length", "length", text, u16::MAX as u64)?;
    Ok(PortRange {
        first: first as u16,
        last: last as u16,
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "length match options:\n",
    "[!] --length length[:length]    Match packet length against value or range\n",
    "                                of values (inclusive)\n",
);
