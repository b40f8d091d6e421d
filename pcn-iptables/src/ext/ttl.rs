//! libxt_ttl: `--ttl-eq`, `--ttl-lt`, `--ttl-gt` (and `--ttl`, an alias of `--ttl-eq`).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry};
use crate::error::Result;
use crate::model::{Match, TtlMode};

pub struct Ttl;

impl Extension for Ttl {
    fn name(&self) -> &'static str {
        "ttl"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Ttl {
            mode: TtlMode::Eq,
            value: 0,
        })
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), id, arg, invert)
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(crate::xtables::param(
                "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Ttl { mode, value } = m else {
            return;
        };
        let _ = match mode {
            TtlMode::Eq => write!(out, " --ttl-eq {value}"),
            TtlMode::Ne => write!(out, " ! --ttl-eq {value}"),
            TtlMode::Lt => write!(out, " --ttl-lt {value}"),
            TtlMode::Gt => write!(out, " --ttl-gt {value}"),
        };
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Ttl { mode, value } = m else {
            return;
        };
        let op = match mode {
            TtlMode::Eq => "==",
            TtlMode::Ne => "!=",
            TtlMode::Lt => "<",
            TtlMode::Gt => ">",
        };
        let _ = write!(out, " TTL match TTL {op} {value}");
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::Ttl { mode, value }, Field::Ttl) = (m, field) else {
            return None;
        };
        let v = *value as u32;
        Some(match mode {
            TtlMode::Eq => Want::ranges([(v, v)], false),
            TtlMode::Ne => Want::ranges([(v, v)], true),
            // Empty when v is 0 (lt) or 255 (gt): the compiler drops the reversed range.
            TtlMode::Lt => Want::ranges(
                [(0, v.wrapping_sub(1))].into_iter().filter(|_| v > 0),
                false,
            ),
            TtlMode::Gt => Want::ranges([(v + 1, 255)], false),
        })
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

const ANY: u32 = 0b111;
const EQ: u8 = 0;
const LT: u8 = 1;
/// In the order libxt_ttl's table gives them (its exclusion messages follow it).
pub const ENTRIES: [Entry; 4] = [
    entry("ttl-lt", LT, false, ANY),
    entry("ttl-gt", 2, false, ANY),
    entry("ttl-eq", EQ, true, ANY),
    entry("ttl", EQ, true, ANY),
];

pub fn parse(m: &mut Match, id: u8, text: &str, invert: bool) -> Result<()> {
    let option = match id {
        EQ => "ttl-eq",
        LT => "ttl-lt",
        _ => "ttl-gt",
    };
    let value = crate::xtables::uint_option("ttl", option, text, 255)? as u8;
    let mode = match (id, invert) {
        (EQ, false) => TtlMode::Eq,
        (EQ, true) => TtlMode::Ne,
        (LT, _) => TtlMode::Lt,
        _ => TtlMode::Gt,
    };
    *m = Match::Ttl { mode, value };
    Ok(())
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "ttl match options:\n",
    "[!] --ttl-eq value\tMatch time to live value\n",
    "  --ttl-lt value\tMatch TTL < value\n",
    "  --ttl-gt value\tMatch TTL > value\n",
);
