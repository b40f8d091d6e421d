//! libxt_tcpmss: `[!] --mss value[:value]`, the MSS option of a TCP packet (xt_tcpmss's
//! `tcpmss_mt`; the data plane reads the option as it parses the packet, for generations that
//! have such a rule: `chain_flag::TCPMSS`).

use std::fmt::Write as _;

use super::api::{
    Context, Entry, Extension, Field, Show, Value, Want, bang, inv, mandatory, range,
};
use crate::error::Result;
use crate::model::{Match, Negatable, PortRange};
use crate::xtables::{mint_range, param};

pub struct Tcpmss;

pub const ENTRIES: [Entry; 1] = [mandatory("mss", 0, true)];

impl Extension for Tcpmss {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::TCPMSS
    }

    fn name(&self) -> &'static str {
        "tcpmss"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Tcpmss(Negatable::plain(PortRange {
            first: 0,
            last: 0,
        })))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let (first, last) = mint_range("tcpmss", "mss", arg, u16::MAX as u64)?;
        if first > last {
            return Err(param("tcpmss: invalid range given"));
        }
        *v.as_match() = Match::Tcpmss(Negatable {
            value: PortRange {
                first: first as u16,
                last: last as u16,
            },
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Tcpmss(t) = m else { return };
        let _ = write!(out, "{} --mss {}", bang(t.negated), range(&t.value));
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Tcpmss(t) = m else { return };
        let _ = write!(out, " tcpmss match {}{}", inv(t.negated), range(&t.value));
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Tcpmss(t), Field::Tcpmss) => Some(Want::Tcpmss(t.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "tcpmss match options:\n",
    "[!] --mss value[:value]\tMatch TCP MSS range.\n",
    "\t\t\t\t(only valid for TCP SYN or SYN/ACK packets)\n",
);
