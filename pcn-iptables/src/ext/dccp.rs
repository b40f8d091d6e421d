//! libxt_dccp: `[!] --source-port|--sport port[:port]`, `[!] --destination-port|--dport
//! port[:port]`, `[!] --dccp-types type[,...]`, `[!] --dccp-option number` of DCCP packets
//! (`-p dccp` loads it).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, inv};
use super::sctp::{Ports, print_ports, save_ports};
use crate::error::Result;
use crate::model::{Match, Negatable, PortRange};
use crate::xtables::{param, port_range, value};
use pcn_iptables_common::IPPROTO_DCCP;

pub struct Dccp;

pub const ENTRIES: [Entry; 6] = [
    entry("source-port", 0, true, 0),
    entry("sport", 0, true, 0),
    entry("destination-port", 1, true, 0),
    entry("dport", 1, true, 0),
    entry("dccp-types", 2, true, 0),
    entry("dccp-option", 3, true, 0),
];

/// The packet types by number (linux/dccp.h), as libxt_dccp names them.
const TYPES: [&str; 11] = [
    "REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC",
    "SYNCACK", "INVALID",
];

impl Extension for Dccp {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::DCCP
    }

    fn name(&self) -> &'static str {
        "dccp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Dccp {
            sport: None,
            dport: None,
            types: None,
            option: None,
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
        let Match::Dccp {
            sport,
            dport,
            types,
            option,
        } = v.as_match()
        else {
            unreachable!("a dccp instance holds a dccp match");
        };
        let (slot, option) = match id {
            0 => (sport, "source-port"),
            1 => (dport, "destination-port"),
            2 => {
                *types = Some(Negatable {
                    value: parse_types(arg)?,
                    negated: invert,
                });
                return Ok(());
            }
            _ => {
                // XTTYPE_UINT8 from 1 to 255.
                let number = value::xtables_uint(arg, 1, u8::MAX as u64).ok_or_else(|| {
                    param(
                        "dccp: bad value for option \"--dccp-option\", or out of range (1-255).\n",
                    )
                })?;
                *option = Some(Negatable {
                    value: number as u8,
                    negated: invert,
                });
                return Ok(());
            }
        };
        let [first, last] = port_range(cx.db, "dccp", option, arg)?;
        *slot = Some(Negatable {
            value: PortRange { first, last },
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Some((ports, types, option)) = parts(m) else {
            return;
        };
        save_ports(ports, out);
        if let Some(t) = types {
            let bang = if t.negated { " !" } else { "" };
            let _ = write!(out, "{bang} --dccp-types {}", type_list(t.value, false));
        }
        if let Some(o) = option {
            let _ = write!(out, "{} --dccp-option {}", bang(o.negated), o.value);
        }
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        let Some((ports, types, option)) = parts(m) else {
            return;
        };
        out.push_str(" dccp");
        print_ports(ports, "dccp", show, out);
        if let Some(t) = types {
            let bang = if t.negated { " !" } else { "" };
            let _ = write!(out, "{bang} {}", type_list(t.value, show.numeric));
        }
        if let Some(o) = option {
            let _ = write!(out, " option={}{}", inv(o.negated), o.value);
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (
                Match::Dccp {
                    sport,
                    dport,
                    types,
                    option,
                },
                Field::Ports,
            ) => Some(Want::Ports {
                proto: IPPROTO_DCCP,
                sport: sport.clone(),
                dport: dport.clone(),
                dccp_types: types.clone(),
                dccp_option: option.clone(),
            }),
            _ => None,
        }
    }

    /// The ports, type and options are not in the flow cache's key.
    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// The match's port ranges, types and option.
type Parts<'a> = (
    Ports<'a>,
    &'a Option<Negatable<u16>>,
    &'a Option<Negatable<u8>>,
);

fn parts(m: &Match) -> Option<Parts<'_>> {
    match m {
        Match::Dccp {
            sport,
            dport,
            types,
            option,
        } => Some(([sport, dport], types, option)),
        _ => None,
    }
}

/// INVALID: every type from 10 on (none is defined).
const INVALID: usize = 10;

/// `parse_dccp_types`: names separated by commas (empty ones skipped), any case.
fn parse_types(text: &str) -> Result<u16> {
    let mut mask = 0;
    for name in text.split(',').filter(|n| !n.is_empty()) {
        let i = TYPES
            .iter()
            .position(|t| t.eq_ignore_ascii_case(name))
            .ok_or_else(|| param(format!("Unknown DCCP type `{name}'")))?;
        mask |= match i {
            INVALID => u16::MAX << INVALID,
            i => 1 << i,
        };
    }
    Ok(mask)
}

/// `print_types`' list: by number, or by name (the types from 10 on once, as INVALID).
fn type_list(mask: u16, numeric: bool) -> String {
    let set = (0..16).filter(|i| mask & (1 << i) != 0);
    let names: Vec<String> = match numeric {
        true => set.map(|i| i.to_string()).collect(),
        false => set
            .take_while(|&i| i <= INVALID)
            .map(|i| TYPES[i.min(INVALID)].to_string())
            .collect(),
    };
    names.join(",")
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "dccp match options\n",
    "[!] --source-port port[:port]                          match source port(s)\n",
    " --sport ...\n",
    "[!] --destination-port port[:port]                     match destination port(s)\n",
    " --dport ...\n",
    "[!] --dccp-types type[,...]                            match when packet is one of the given types\n",
    "[!] --dccp-option option                               match if option (by number!) is set\n",
);
