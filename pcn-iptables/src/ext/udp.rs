//! libxt_udp: `--sport`, `--dport`. Its model value, printing and compiler contract are tcp's
//! ([`super::tcp`]); the port grammar differs (libxtables' `xtopt_parse_mport`).

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry};
use super::tcp::{canonical_ports, print_ports, save_ports, want_ports};
use crate::error::Result;
use crate::model::{IPPROTO_UDP, Match, Negatable, PortRange};
use crate::xtables::netdb::NameDb;
use crate::xtables::{param, value};

pub const ENTRIES: [Entry; 4] = [
    entry("source-port", 0, true, 0),
    entry("sport", 0, true, 0),
    entry("destination-port", 1, true, 0),
    entry("dport", 1, true, 0),
];

pub struct Udp;

impl Extension for Udp {
    fn hotdrops(&self, m: &Match) -> u8 {
        super::tcp::port_hotdrops(m)
    }

    fn name(&self) -> &'static str {
        "udp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Ports {
            proto: IPPROTO_UDP,
            sport: None,
            dport: None,
            tcp_flags: None,
            tcp_option: None,
        })
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let Match::Ports { sport, dport, .. } = v.as_match() else {
            unreachable!("a udp instance holds a port match");
        };
        let (slot, long_name) = match id {
            0 => (sport, "source-port"),
            _ => (dport, "destination-port"),
        };
        *slot = Some(Negatable {
            value: ports(cx.db, arg, long_name)?,
            negated: invert,
        });
        Ok(())
    }

    fn canonical(&self, m: Match) -> Result<Match> {
        canonical_ports(m)
    }

    fn save(&self, m: &Match, out: &mut String) {
        save_ports(m, out);
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        print_ports(m, show, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        want_ports(m, field)
    }
}

/// The udp match's port ranges (libxtables' `xtopt_parse_mport`). 1.8.9 accepts a reversed range
/// (`5:3`, which matches nothing); an empty text is port 0.
pub fn ports(db: &NameDb, text: &str, long_name: &str) -> Result<PortRange> {
    let mut range = [0, u16::MAX];
    let mut count = 0;
    for part in text.split(':') {
        if count == range.len() {
            return Err(param(format!(
                "udp: Too many components for option \"--{long_name}\" (max: 2)\n"
            )));
        }
        if !part.is_empty() {
            range[count] = value::service_port(db, part)
                .ok_or_else(|| param(format!("Port \"{part}\" does not resolve to anything.\n")))?;
        }
        count += 1;
    }
    if count == 1 {
        range[1] = range[0];
    }
    Ok(PortRange {
        first: range[0],
        last: range[1],
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "udp match options:\n",
    "[!] --source-port port[:port]\n",
    " --sport ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-port port[:port]\n",
    " --dport ...\n",
    "\t\t\t\tmatch destination port(s)\n",
);
