//! libxt_ecn: `[!] --ecn-tcp-cwr`, `[!] --ecn-tcp-ece` (TCP flags) and `[!] --ecn-ip-ect N`
//! (the TOS byte's lower two bits).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag, tos_bytes};
use crate::error::Result;
use crate::model::{Match, Negatable};
use crate::xtables::{param, value::xtables_uint};

pub struct Ecn;

const O_CWR: u8 = 0;
const O_ECE: u8 = 1;
const O_ECT: u8 = 2;

pub const ENTRIES: [Entry; 3] = [
    Entry {
        invert: true,
        ..flag("ecn-tcp-cwr", O_CWR)
    },
    Entry {
        invert: true,
        ..flag("ecn-tcp-ece", O_ECE)
    },
    entry("ecn-ip-ect", O_ECT, true, 0),
];

/// The TCP flags' CWR and ECE bits.
const CWR: u8 = 0x80;
const ECE: u8 = 0x40;

impl Extension for Ecn {
    fn name(&self) -> &'static str {
        "ecn"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Ecn {
            ect: None,
            ece: None,
            cwr: None,
        })
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Ecn { ect, ece, cwr } = v.as_match() else {
            unreachable!("an ecn instance holds an ecn match");
        };
        let set = Some(Negatable {
            value: (),
            negated: invert,
        });
        match id {
            O_CWR => *cwr = set,
            O_ECE => *ece = set,
            _ => {
                let value = xtables_uint(arg, 0, 3).ok_or_else(|| {
                    param("ecn: bad value for option \"--ecn-ip-ect\", or out of range (0-3).\n")
                })?;
                *ect = Some(Negatable {
                    value: value as u8,
                    negated: invert,
                });
            }
        }
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("ECN match: some option required"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Ecn { ect, ece, cwr } = m else {
            return;
        };
        let bang = |n: bool| if n { " !" } else { "" };
        if let Some(e) = ece {
            let _ = write!(out, "{} --ecn-tcp-ece", bang(e.negated));
        }
        if let Some(c) = cwr {
            let _ = write!(out, "{} --ecn-tcp-cwr", bang(c.negated));
        }
        if let Some(t) = ect {
            let _ = write!(out, "{} --ecn-ip-ect {}", bang(t.negated), t.value);
        }
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Ecn { ect, ece, cwr } = m else {
            return;
        };
        let bang = |n: bool| if n { "!" } else { "" };
        out.push_str(" ECN match");
        if let Some(e) = ece {
            let _ = write!(out, " {}ECE", bang(e.negated));
        }
        if let Some(c) = cwr {
            let _ = write!(out, " {}CWR", bang(c.negated));
        }
        if let Some(t) = ect {
            let _ = write!(out, " {}ECT={}", bang(t.negated), t.value);
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let Match::Ecn { ect, ece, cwr } = m else {
            return None;
        };
        match field {
            Field::Tos => ect.as_ref().map(|t| tos_bytes(0x03, t.value, t.negated)),
            Field::TcpFlags if ece.is_some() || cwr.is_some() => {
                // Each flag set, or clear where negated.
                let holds = |f: u8, bit: u8, want: &Option<Negatable<()>>| {
                    want.as_ref().is_none_or(|w| (f & bit != 0) != w.negated)
                };
                let bytes = (0..=255u8).filter(|f| holds(*f, ECE, ece) && holds(*f, CWR, cwr));
                Some(Want::ranges(bytes.map(|f| (f as u32, f as u32)), false))
            }
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// Whether the match reads the TCP header (the kernel then wants `-p tcp`).
pub fn reads_tcp(m: &Match) -> bool {
    matches!(m, Match::Ecn { ece, cwr, .. } if ece.is_some() || cwr.is_some())
}

/// libxt_ecn's help text.
pub const HELP: &str = concat!(
    "\n",
    "ECN match options\n",
    "[!] --ecn-tcp-cwr \t\tMatch CWR bit of TCP header\n",
    "[!] --ecn-tcp-ece\t\tMatch ECE bit of TCP header\n",
    "[!] --ecn-ip-ect [0..3]\tMatch ECN codepoint in IPv4/IPv6 header\n",
);
