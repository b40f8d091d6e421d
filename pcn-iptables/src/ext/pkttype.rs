//! libxt_pkttype: `[!] --pkt-type unicast|broadcast|multicast|otherhost` (and the aliases
//! `bcast`, `mcast`, `host`).

use std::fmt::Write as _;

use pcn_iptables_common::pkt_type;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, mandatory};
use crate::error::Result;
use crate::model::{Match, Negatable};
use crate::xtables::param;

pub struct PktType;

pub const ENTRIES: [Entry; 1] = [mandatory("pkt-type", 0, true)];

/// libxt_pkttype's names, in its order: the first of a type is the one printed.
const NAMES: [(&str, u8); 7] = [
    ("unicast", pkt_type::HOST),
    ("broadcast", pkt_type::BROADCAST),
    ("multicast", pkt_type::MULTICAST),
    ("otherhost", pkt_type::OTHERHOST),
    ("bcast", pkt_type::BROADCAST),
    ("mcast", pkt_type::MULTICAST),
    ("host", pkt_type::HOST),
];

impl Extension for PktType {
    fn name(&self) -> &'static str {
        "pkttype"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::PktType(Negatable::plain(pkt_type::HOST)))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let value = NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(arg))
            .map(|(_, t)| *t)
            .ok_or_else(|| param(format!("Bad packet type '{arg}'")))?;
        *v.as_match() = Match::PktType(Negatable {
            value,
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::PktType(t) = m else { return };
        let bang = if t.negated { " !" } else { "" };
        let _ = write!(out, "{bang} --pkt-type {}", name(t.value));
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::PktType(t) = m else { return };
        let op = if t.negated { "!=" } else { "=" };
        let _ = write!(out, " PKTTYPE {op} {}", name(t.value));
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::PktType(t), Field::PktType) = (m, field) else {
            return None;
        };
        Some(Want::PktType(t.clone()))
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

fn name(t: u8) -> &'static str {
    NAMES
        .iter()
        .find(|(_, v)| *v == t)
        .map_or("unicast", |(name, _)| name)
}

/// libxt_pkttype's help text.
pub const HELP: &str = concat!(
    "\n",
    "pkttype match options:\n",
    "[!] --pkt-type packettype    match packet type\n",
    "Valid packet types:\n",
    "\tunicast       \t\tto us\n",
    "\tbroadcast     \t\tto all\n",
    "\tmulticast     \t\tto group\n",
    "\totherhost     \t\tto someone else\n",
    "\n",
);
