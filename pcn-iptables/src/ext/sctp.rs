//! libxt_sctp: `[!] --source-port|--sport port[:port]`, `[!] --destination-port|--dport
//! port[:port]` of SCTP packets (`-p sctp` loads it); `--chunk-types` is not supported.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, inv};
use crate::error::Result;
use crate::model::{Match, Negatable, PortRange};
use crate::xtables::{param, unsupported, value::xtables_uint};
use pcn_iptables_common::IPPROTO_SCTP;

pub struct Sctp;

pub const ENTRIES: [Entry; 5] = [
    entry("source-port", 0, true, 0),
    entry("sport", 0, true, 0),
    entry("destination-port", 1, true, 0),
    entry("dport", 1, true, 0),
    entry("chunk-types", 2, true, 0),
];

impl Extension for Sctp {
    fn name(&self) -> &'static str {
        "sctp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    /// An old-style parse: its own messages for an option given twice.
    fn generic_checks(&self) -> bool {
        false
    }

    fn init(&self) -> Value {
        Value::Match(Match::Sctp {
            sport: None,
            dport: None,
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
        let Match::Sctp { sport, dport } = v.as_match() else {
            unreachable!("an sctp instance holds an sctp match");
        };
        let (slot, long_name) = match id {
            0 => (sport, "source-port"),
            1 => (dport, "destination-port"),
            _ => return Err(unsupported("option \"--chunk-types\"")),
        };
        if slot.is_some() {
            return Err(param(format!("Only one `--{long_name}' allowed")));
        }
        *slot = Some(Negatable {
            value: ports(cx.db, arg)?,
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        if let Match::Sctp { sport, dport } = m {
            save_ports([sport, dport], out);
        }
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        out.push_str(" sctp");
        if let Match::Sctp { sport, dport } = m {
            print_ports([sport, dport], "sctp", show, out);
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Sctp { sport, dport }, Field::Ports) => Some(Want::Ports {
                proto: IPPROTO_SCTP,
                sport: sport.clone(),
                dport: dport.clone(),
                dccp_types: None,
            }),
            _ => None,
        }
    }

    /// The ports are not in the flow cache's key.
    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

pub(super) type Ports<'a> = [&'a Option<Negatable<PortRange>>; 2];

/// libxt_sctp's and libxt_dccp's save of the source and destination ranges given.
pub(super) fn save_ports(ports: Ports, out: &mut String) {
    for (option, p) in ["sport", "dport"].into_iter().zip(ports) {
        let Some(p) = p else { continue };
        let _ = write!(out, "{} --{option} {}", bang(p.negated), p.value.first);
        if p.value.first != p.value.last {
            let _ = write!(out, ":{}", p.value.last);
        }
    }
}

/// Their `print_ports`, services of `proto` by name unless numeric; a whole range not
/// negated is not shown.
pub(super) fn print_ports(ports: Ports, proto: &str, show: &Show, out: &mut String) {
    let port = |p: u16| match show.db.service_name(p, proto).filter(|_| !show.numeric) {
        Some(name) => name.to_string(),
        None => p.to_string(),
    };
    for (label, p) in ["spt", "dpt"].into_iter().zip(ports) {
        let Some(p) = p.as_ref() else { continue };
        if p.value.first == 0 && p.value.last == u16::MAX && !p.negated {
            continue;
        }
        let (first, last) = (port(p.value.first), port(p.value.last));
        let _ = match p.value.first == p.value.last {
            true => write!(out, " {label}:{}{first}", inv(p.negated)),
            false => write!(out, " {label}s:{}{first}:{last}", inv(p.negated)),
        };
    }
}

/// libxt_sctp's `parse_sctp_ports`: as tcp's, each port an sctp service or a number
/// (`xtables_parse_port`).
fn ports(db: &crate::xtables::netdb::NameDb, text: &str) -> Result<PortRange> {
    super::tcp::port_range(text, |s| {
        db.service_port(s, "sctp")
            .or_else(|| xtables_uint(s, 0, u16::MAX as u64).map(|p| p as u16))
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "sctp match options\n",
    "[!] --source-port port[:port]                          match source port(s)\n",
    " --sport ...\n",
    "[!] --destination-port port[:port]                     match destination port(s)\n",
    " --dport ...\n",
    "[!] --chunk-types (all|any|none) (chunktype[:flags])+\tmatch if all, any or none of\n",
    "\t\t\t\t\t\t        chunktypes are present\n",
    "chunktypes - DATA INIT INIT_ACK SACK HEARTBEAT HEARTBEAT_ACK ABORT SHUTDOWN SHUTDOWN_ACK ERROR COOKIE_ECHO COOKIE_ACK ECN_ECNE ECN_CWR SHUTDOWN_COMPLETE ASCONF ASCONF_ACK FORWARD_TSN ALL NONE\n",
);
