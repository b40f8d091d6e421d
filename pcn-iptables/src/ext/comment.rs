//! libxt_comment: `--comment`, which matches every packet.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Show, Value, mandatory};
use crate::error::Result;
use crate::model::Match;
use crate::xtables::{save_string, truncate, unsupported};

pub const ENTRIES: [Entry; 1] = [mandatory("comment", 0, false)];

pub struct Comment;

impl Extension for Comment {
    fn name(&self) -> &'static str {
        "comment"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Comment(String::new()))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        if arg.contains('\n') {
            return Err(unsupported("a comment with a newline"));
        }
        // XTTYPE_STRING into a 256-byte buffer: longer comments are cut.
        *v.as_match() = Match::Comment(truncate(arg, 255));
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Comment(text) = m else { return };
        let _ = write!(out, " --comment {}", save_string(text));
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Comment(text) = m else { return };
        let _ = write!(out, " /* {text} */");
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "comment match options:\n",
    "--comment COMMENT             Attach a comment to a rule\n",
);
