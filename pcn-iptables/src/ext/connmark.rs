//! libxt_connmark: `[!] --mark value[/mask]`, the mark of the packet's connection.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, mandatory};
use super::mark::print_mark;
use crate::error::Result;
use crate::model::{MarkMask, Match, Negatable};
use crate::xtables::markmask;

pub struct Connmark;

pub const ENTRIES: [Entry; 1] = [mandatory("mark", 0, true)];

impl Extension for Connmark {
    fn name(&self) -> &'static str {
        "connmark"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Connmark(Negatable::plain(MarkMask::default())))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let (value, mask) = markmask("connmark", "mark", arg)?;
        *v.as_match() = Match::Connmark(Negatable {
            value: MarkMask { value, mask },
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Connmark(m) = m else { return };
        out.push_str(if m.negated { " ! --mark" } else { " --mark" });
        print_mark(m.value, out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Connmark(m) = m else { return };
        let _ = write!(out, " connmark match {}", if m.negated { "!" } else { "" });
        print_mark(m.value, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Connmark(m), Field::Connmark) => Some(Want::Mark(m.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        // CONNMARK changes it as packets come.
        true
    }

    fn tracks(&self) -> bool {
        true
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "connmark match options:\n",
    "[!] --mark value[/mask]    Match ctmark value with optional mask\n",
);
