//! libxt_tcp: `--sport`, `--dport`, `--tcp-flags`, `--syn`, `--tcp-option`. The port printing
//! and the compiler contract are shared with udp ([`super::udp`]), which has the same model
//! value.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, flag, inv};
use crate::error::Result;
use crate::model::{IPPROTO_TCP, Match, Negatable, PortRange, TcpFlags};
use crate::xtables::netdb::NameDb;
use crate::xtables::{param, unsupported, value};

/// In libxt_tcp's order (getopt's abbreviations follow it).
pub const ENTRIES: [Entry; 7] = [
    entry("source-port", 0, true, 0),
    entry("sport", 0, true, 0),
    entry("destination-port", 1, true, 0),
    entry("dport", 1, true, 0),
    flag("syn", 2),
    entry("tcp-flags", 3, true, 0),
    entry("tcp-option", 4, true, 0),
];

pub struct Tcp;

impl Extension for Tcp {
    fn hotdrops(&self, m: &Match) -> u8 {
        port_hotdrops(m)
    }

    fn name(&self) -> &'static str {
        "tcp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Ports {
            proto: IPPROTO_TCP,
            sport: None,
            dport: None,
            tcp_flags: None,
            tcp_option: None,
        })
    }

    /// libxt_tcp's own `parse`, with its own checks and messages.
    fn generic_checks(&self) -> bool {
        false
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let Match::Ports {
            sport,
            dport,
            tcp_flags,
            tcp_option,
            ..
        } = v.as_match()
        else {
            unreachable!("a tcp instance holds a port match");
        };
        match id {
            0 | 1 => {
                let (slot, long_name) = match id {
                    0 => (sport, "source-port"),
                    _ => (dport, "destination-port"),
                };
                if slot.is_some() {
                    return Err(param(format!("Only one `--{long_name}' allowed")));
                }
                *slot = Some(Negatable {
                    value: ports(cx.db, arg)?,
                    negated: invert,
                });
            }
            2 | 3 => {
                if tcp_flags.is_some() {
                    return Err(param("Only one of `--syn' or `--tcp-flags'  allowed"));
                }
                // `--syn` is `--tcp-flags SYN,RST,ACK,FIN SYN`; `--tcp-flags` takes COMP
                // from the next argument.
                let (mask, comp) = match id {
                    2 => ("SYN,RST,ACK,FIN".to_string(), "SYN".to_string()),
                    _ => (
                        arg.to_string(),
                        (cx.next_arg)().ok_or_else(|| param("--tcp-flags requires two args."))?,
                    ),
                };
                *tcp_flags = Some(Negatable {
                    value: TcpFlags {
                        mask: flags(&mask)?,
                        comp: flags(&comp)?,
                    },
                    negated: invert,
                });
            }
            _ => {
                if tcp_option.is_some() {
                    return Err(param("Only one `--tcp-option' allowed"));
                }
                // parse_tcp_option: xtables_strtoui from 1 to 255.
                let kind = value::xtables_uint(arg, 1, u8::MAX as u64)
                    .ok_or_else(|| param(format!("Bad TCP option \"{arg}\"")))?;
                *tcp_option = Some(Negatable {
                    value: kind as u8,
                    negated: invert,
                });
            }
        }
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

    fn per_packet(&self, m: &Match) -> bool {
        matches!(
            m,
            Match::Ports {
                tcp_flags: Some(_),
                ..
            } | Match::Ports {
                tcp_option: Some(_),
                ..
            }
        )
    }
}

/// tcp's and udp's hotdrop: a header cut short (and tcp's fragment at offset 1).
pub(super) fn port_hotdrops(m: &Match) -> u8 {
    use pcn_iptables_common::hotdrop;
    match m {
        Match::Ports { proto, .. } if *proto == IPPROTO_TCP => hotdrop::TCP,
        Match::Ports { .. } => hotdrop::UDP,
        _ => 0,
    }
}

/// The name `-m` gives a port match (the model only has tcp and udp ones).
pub fn port_match_name(proto: u8) -> &'static str {
    if proto == IPPROTO_TCP { "tcp" } else { "udp" }
}

/// tcp's and udp's canonical form: `0:65535` is no port constraint; `! 0:65535` (no port)
/// the data plane cannot say.
pub(super) fn canonical_ports(m: Match) -> Result<Match> {
    let Match::Ports {
        proto,
        sport,
        dport,
        tcp_flags,
        tcp_option,
    } = m
    else {
        return Ok(m);
    };
    let canonical = |ports: Option<Negatable<PortRange>>, name| match ports {
        Some(Negatable {
            value:
                PortRange {
                    first: 0,
                    last: u16::MAX,
                },
            negated,
        }) => {
            if negated {
                Err(unsupported(format_args!("`! --{name} 0:65535' (no port)")))
            } else {
                Ok(None)
            }
        }
        ports => Ok(ports),
    };
    Ok(Match::Ports {
        proto,
        sport: canonical(sport, "sport")?,
        dport: canonical(dport, "dport")?,
        tcp_flags,
        tcp_option,
    })
}

/// tcp's and udp's `save`.
pub(super) fn save_ports(m: &Match, out: &mut String) {
    let Match::Ports {
        sport,
        dport,
        tcp_flags,
        tcp_option,
        ..
    } = m
    else {
        return;
    };
    for (option, ports) in [("sport", sport), ("dport", dport)] {
        if let Some(Negatable {
            value: PortRange { first, last },
            negated,
        }) = ports
        {
            let _ = write!(out, "{} --{option} {first}", bang(*negated));
            if first != last {
                let _ = write!(out, ":{last}");
            }
        }
    }
    if let Some(o) = tcp_option {
        let _ = write!(out, "{} --tcp-option {}", bang(o.negated), o.value);
    }
    if let Some(Negatable {
        value: TcpFlags { mask, comp },
        negated,
    }) = tcp_flags
        && (*mask != 0 || *negated)
    {
        let _ = write!(
            out,
            "{} --tcp-flags {} {}",
            bang(*negated),
            flag_names(*mask),
            flag_names(*comp)
        );
    }
}

/// tcp's and udp's `print`.
pub(super) fn print_ports(m: &Match, show: &Show, out: &mut String) {
    let Match::Ports {
        proto,
        sport,
        dport,
        tcp_flags,
        tcp_option,
    } = m
    else {
        return;
    };
    let numeric = show.numeric;
    let service = |p: u16, proto: &str| match show.db.service_name(p, proto).filter(|_| !numeric) {
        Some(service) => service.to_string(),
        None => p.to_string(),
    };
    let name = port_match_name(*proto);
    let _ = write!(out, " {name}");
    for (label, ports) in [("spt", sport), ("dpt", dport)] {
        if let Some(Negatable {
            value: PortRange { first, last },
            negated,
        }) = ports
        {
            let inv = inv(*negated);
            let _ = match first == last {
                true => write!(out, " {label}:{inv}{}", service(*first, name)),
                false => write!(
                    out,
                    " {label}s:{inv}{}:{}",
                    service(*first, name),
                    service(*last, name)
                ),
            };
        }
    }
    if let Some(o) = tcp_option {
        let _ = write!(out, " option={}{}", inv(o.negated), o.value);
    }
    if let Some(Negatable {
        value: TcpFlags { mask, comp },
        negated,
    }) = tcp_flags
        && (*mask != 0 || *negated)
    {
        let _ = match numeric {
            true => write!(out, " flags:{}0x{mask:02X}/0x{comp:02X}", inv(*negated)),
            false => write!(
                out,
                " flags:{}{}/{}",
                inv(*negated),
                flag_names(*mask),
                flag_names(*comp)
            ),
        };
    }
}

/// tcp's and udp's contract with the compiler: the ports, and tcp's flags byte (every byte
/// `f` with `f & mask == comp`).
pub(super) fn want_ports(m: &Match, field: Field) -> Option<Want> {
    let Match::Ports {
        sport,
        dport,
        tcp_flags,
        tcp_option,
        ..
    } = m
    else {
        return None;
    };
    let ports = |p: &Negatable<PortRange>| {
        Want::ranges([(p.value.first as u32, p.value.last as u32)], p.negated)
    };
    match field {
        Field::Sport => match sport {
            Some(p) => Some(ports(p)),
            // `-m tcp`/`-m udp` alone still reads the header: no later fragment matches.
            None if dport.is_none() && tcp_flags.is_none() => {
                Some(Want::ranges([(0, u16::MAX as u32)], false))
            }
            None => None,
        },
        Field::Dport => dport.as_ref().map(ports),
        Field::TcpFlags => tcp_flags.as_ref().map(|Negatable { value, negated }| {
            let TcpFlags { mask, comp } = *value;
            let bytes = (0..=255u32).filter(|f| (*f as u8 & mask) == comp);
            Want::ranges(bytes.map(|f| (f, f)), *negated)
        }),
        Field::TcpOption => tcp_option.clone().map(Want::TcpOption),
        _ => None,
    }
}

/// libxt_tcp's `print_tcpf`: FIN, SYN, RST, PSH, ACK, URG, comma-separated, or NONE.
fn flag_names(flags: u8) -> String {
    const NAMES: [&str; 6] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG"];
    let names: Vec<&str> = (0..6)
        .filter(|i| flags & (1 << i) != 0)
        .map(|i| NAMES[i])
        .collect();
    if names.is_empty() {
        "NONE".into()
    } else {
        names.join(",")
    }
}

/// The tcp match's `parse_tcp_ports`: `port`, `first:last`, `:last`, `first:`.
pub fn ports(db: &NameDb, text: &str) -> Result<PortRange> {
    port_range(text, |s| value::tcp_port(db, s))
}

/// `parse_tcp_ports` and `parse_sctp_ports`, each port read by `lookup`.
pub fn port_range(text: &str, lookup: impl Fn(&str) -> Option<u16>) -> Result<PortRange> {
    let port =
        |s: &str| lookup(s).ok_or_else(|| param(format!("invalid port/service `{s}' specified")));
    let Some((first, last)) = text.split_once(':') else {
        let p = port(text)?;
        return Ok(PortRange { first: p, last: p });
    };
    let first = if first.is_empty() { 0 } else { port(first)? };
    let last = if last.is_empty() {
        u16::MAX
    } else {
        port(last)?
    };
    if first > last {
        return Err(param("invalid portrange (min > max)"));
    }
    Ok(PortRange { first, last })
}

/// libxt_tcp's `parse_tcp_flag`: comma-separated names (any case), `ALL` and `NONE` included;
/// strtok(3) splits them, so empty names are skipped (`""` is no flag, `SYN,,ACK` two).
pub fn flags(text: &str) -> Result<u8> {
    const NAMES: [(&str, u8); 8] = [
        ("FIN", 0x01),
        ("SYN", 0x02),
        ("RST", 0x04),
        ("PSH", 0x08),
        ("ACK", 0x10),
        ("URG", 0x20),
        ("ALL", 0x3F),
        ("NONE", 0),
    ];
    text.split(',')
        .filter(|n| !n.is_empty())
        .try_fold(0, |flags, name| {
            NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, bit)| flags | bit)
                .ok_or_else(|| param(format!("Unknown TCP flag `{name}'")))
        })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "tcp match options:\n",
    "[!] --tcp-flags mask comp\tmatch when TCP flags & mask == comp\n",
    "\t\t\t\t(Flags: SYN ACK FIN RST URG PSH ALL NONE)\n",
    "[!] --syn\t\t\tmatch when only SYN flag set\n",
    "\t\t\t\t(equivalent to --tcp-flags SYN,RST,ACK,FIN SYN)\n",
    "[!] --source-port port[:port]\n",
    " --sport ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-port port[:port]\n",
    " --dport ...\n",
    "\t\t\t\tmatch destination port(s)\n",
    "[!] --tcp-option number        match if TCP option set\n",
);
