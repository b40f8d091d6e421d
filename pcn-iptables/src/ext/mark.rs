//! libxt_mark: `[!] --mark value[/mask]`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, mandatory};
use crate::error::Result;
use crate::model::{MarkMask, Match, Negatable};
use crate::xtables::markmask;

pub struct Mark;

pub const ENTRIES: [Entry; 1] = [mandatory("mark", 0, true)];

impl Extension for Mark {
    fn name(&self) -> &'static str {
        "mark"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Mark(Negatable::plain(MarkMask::default())))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let (value, mask) = markmask("mark", "mark", arg)?;
        *v.as_match() = Match::Mark(Negatable {
            value: MarkMask { value, mask },
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Mark(m) = m else { return };
        out.push_str(if m.negated { " ! --mark" } else { " --mark" });
        print_mark(m.value, out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Mark(m) = m else { return };
        out.push_str(if m.negated {
            " mark match !"
        } else {
            " mark match"
        });
        print_mark(m.value, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Mark(m), Field::Mark) => Some(Want::Mark(m.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        // A mark is the skb's, not the flow's.
        true
    }
}

/// libxt_mark's `print_mark`: the mask only when it is not all ones.
pub(super) fn print_mark(m: MarkMask, out: &mut String) {
    let _ = write!(out, " 0x{:x}", m.value);
    if m.mask != u32::MAX {
        let _ = write!(out, "/0x{:x}", m.mask);
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "mark match options:\n",
    "[!] --mark value[/mask]    Match nfmark value with optional mask\n",
);
