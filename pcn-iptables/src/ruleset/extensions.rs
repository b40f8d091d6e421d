//! How each match and target prints: its `save` function (`-S`, iptables-save) and its `print`
//! function (`-L`), byte for byte as the libxt_* extensions of iptables 1.8.9 print them.

use std::fmt::Write as _;

use super::model::{Match, Negatable, PortRange, Rule, Target, TcpFlags, TtlMode};
use super::{port_match_name, state_match_names, state_names};
use crate::syntax::extensions::{addrtype, icmp, limit, log, mac, multiport, reject, save_string};
use crate::syntax::netdb::NameDb;

fn bang(negated: bool) -> &'static str {
    if negated { " !" } else { "" }
}

fn inv(negated: bool) -> &'static str {
    if negated { "!" } else { "" }
}

/// A match's `save`, after ` -m NAME`.
pub fn save(m: &Match) -> String {
    let mut out = String::new();
    match m {
        Match::Ports {
            sport,
            dport,
            tcp_flags,
            ..
        } => {
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
        Match::Conntrack { module, states } => {
            let (_, option) = state_match_names(*module);
            let _ = write!(
                out,
                "{} --{option} {}",
                bang(states.negated),
                state_names(states.value)
            );
        }
        Match::Multiport { dir, ports } => {
            let option = dir.name();
            let _ = write!(
                out,
                "{} --{option} {}",
                bang(ports.negated),
                port_list(&ports.value, &|p| p.to_string())
            );
        }
        Match::Icmp(t) => {
            out += bang(t.negated);
            let t = t.value;
            if t.kind == 0xFF {
                out += " --icmp-type any";
            } else {
                let _ = write!(out, " --icmp-type {}", t.kind);
                if t.code_min != 0 || t.code_max != 0xFF {
                    let _ = write!(out, "/{}", t.code_min);
                }
            }
        }
        Match::Iprange { src, dst } => {
            for (option, range) in [("src-range", src), ("dst-range", dst)] {
                if let Some(r) = range {
                    let _ = write!(
                        out,
                        "{} --{option} {}-{}",
                        bang(r.negated),
                        r.value.first,
                        r.value.last
                    );
                }
            }
        }
        Match::Mac(m) => {
            let _ = write!(
                out,
                "{} --mac-source {}",
                bang(m.negated),
                mac::format(&m.value)
            );
        }
        Match::Length(l) => {
            let _ = write!(out, "{} --length {}", bang(l.negated), range(&l.value));
        }
        Match::Ttl { mode, value } => {
            let _ = match mode {
                TtlMode::Eq => write!(out, " --ttl-eq {value}"),
                TtlMode::Ne => write!(out, " ! --ttl-eq {value}"),
                TtlMode::Lt => write!(out, " --ttl-lt {value}"),
                TtlMode::Gt => write!(out, " --ttl-gt {value}"),
            };
        }
        Match::Addrtype { src, dst } => {
            for (option, types) in [("src-type", src), ("dst-type", dst)] {
                if let Some(t) = types {
                    let _ = write!(
                        out,
                        "{} --{option} {}",
                        bang(t.negated),
                        addrtype::format(t.value)
                    );
                }
            }
        }
        Match::Comment(text) => {
            let _ = write!(out, " --comment {}", save_string(text));
        }
        Match::Limit(l) => {
            let _ = write!(out, " --limit {}", limit::format_rate(l.avg));
            if l.burst != crate::ruleset::model::Limit::DEFAULT.burst {
                let _ = write!(out, " --limit-burst {}", l.burst);
            }
        }
    }
    out
}

/// The name `-m` gives a match in `-S`.
pub fn match_name(m: &Match) -> &'static str {
    match m {
        Match::Ports { proto, .. } => port_match_name(*proto),
        Match::Conntrack { module, .. } => state_match_names(*module).0,
        Match::Multiport { .. } => "multiport",
        Match::Icmp(_) => "icmp",
        Match::Iprange { .. } => "iprange",
        Match::Mac(_) => "mac",
        Match::Length(_) => "length",
        Match::Ttl { .. } => "ttl",
        Match::Addrtype { .. } => "addrtype",
        Match::Comment(_) => "comment",
        Match::Limit(_) => "limit",
    }
}

/// A match's `print` for `-L`.
pub fn print(db: &NameDb, rule: &Rule, m: &Match, numeric: bool) -> String {
    let mut out = String::new();
    let service = |p: u16, proto: &str| match db.service_name(p, proto).filter(|_| !numeric) {
        Some(service) => service.to_string(),
        None => p.to_string(),
    };
    match m {
        Match::Ports {
            proto,
            sport,
            dport,
            tcp_flags,
        } => {
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
        Match::Conntrack { module, states } => {
            // conntrack_dump: " !" before the option's name.
            let (_, option) = state_match_names(*module);
            let _ = write!(
                out,
                "{} {option} {}",
                bang(states.negated),
                state_names(states.value)
            );
        }
        Match::Multiport { dir, ports } => {
            let dir = dir.name();
            let proto = rule
                .proto
                .as_ref()
                .and_then(|p| multiport::proto_name(p.value))
                .unwrap_or_default();
            let _ = write!(
                out,
                " multiport {dir} {}{}",
                bang(ports.negated),
                port_list(&ports.value, &|p| service(p, proto))
            );
        }
        Match::Icmp(t) => {
            let negated = t.negated;
            let t = t.value;
            match icmp::name_of(&t).filter(|_| !numeric) {
                Some(name) => {
                    let _ = write!(out, " icmp {}{name}", inv(negated));
                }
                None => {
                    let _ = write!(out, " icmp{}type {}", bang(negated), t.kind);
                    if t.code_min == t.code_max {
                        let _ = write!(out, " code {}", t.code_min);
                    } else if t.code_min != 0 || t.code_max != 0xFF {
                        let _ = write!(out, " codes {}-{}", t.code_min, t.code_max);
                    }
                }
            }
        }
        Match::Iprange { src, dst } => {
            for (label, range) in [("source", src), ("destination", dst)] {
                if let Some(r) = range {
                    let _ = write!(
                        out,
                        " {label} IP range{} {}-{}",
                        bang(r.negated),
                        r.value.first,
                        r.value.last
                    );
                }
            }
        }
        Match::Mac(m) => {
            let _ = write!(out, " MAC{} {}", bang(m.negated), mac::format(&m.value));
        }
        Match::Length(l) => {
            let _ = write!(out, " length {}{}", inv(l.negated), range(&l.value));
        }
        Match::Ttl { mode, value } => {
            let op = match mode {
                TtlMode::Eq => "==",
                TtlMode::Ne => "!=",
                TtlMode::Lt => "<",
                TtlMode::Gt => ">",
            };
            let _ = write!(out, " TTL match TTL {op} {value}");
        }
        Match::Addrtype { src, dst } => {
            out += " ADDRTYPE match";
            for (label, types) in [("src-type", src), ("dst-type", dst)] {
                if let Some(t) = types {
                    let _ = write!(
                        out,
                        " {label} {}{}",
                        inv(t.negated),
                        addrtype::format(t.value)
                    );
                }
            }
        }
        Match::Comment(text) => {
            let _ = write!(out, " /* {text} */");
        }
        Match::Limit(l) => {
            let _ = write!(
                out,
                " limit: avg {} burst {}",
                limit::format_rate(l.avg),
                l.burst
            );
        }
    }
    out
}

/// A target extension's `save`, after ` -j NAME`.
pub fn target_save(target: &Target) -> String {
    let mut out = String::new();
    match target {
        Target::Reject(with) => {
            let _ = write!(out, " --reject-with {}", reject::name_of(*with));
        }
        Target::Log(l) => {
            if !l.prefix.is_empty() {
                let _ = write!(out, " --log-prefix {}", save_string(&l.prefix));
            }
            if l.level != crate::ruleset::model::Log::DEFAULT_LEVEL {
                let _ = write!(out, " --log-level {}", l.level);
            }
            for (bit, name) in log::FLAGS {
                if l.flags & bit != 0 {
                    let _ = write!(out, " --log-{name}");
                }
            }
        }
        _ => {}
    }
    out
}

/// A target extension's `print` for `-L`, after the matches.
pub fn target_print(target: &Target, numeric: bool) -> String {
    let mut out = String::new();
    match target {
        Target::Reject(with) => {
            let _ = write!(out, " reject-with {}", reject::name_of(*with));
        }
        Target::Log(l) => {
            out += " LOG";
            if numeric {
                let _ = write!(out, " flags {} level {}", l.flags, l.level);
            } else {
                let _ = write!(out, " level {}", log::LEVEL_NAMES[l.level as usize & 7]);
                for (bit, name) in log::FLAGS {
                    if l.flags & bit != 0 {
                        let _ = write!(out, " {name}");
                    }
                }
            }
            if !l.prefix.is_empty() {
                let _ = write!(out, " prefix \"{}\"", l.prefix);
            }
        }
        _ => {}
    }
    out
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

/// multiport's port list: `a,b:c,...`.
fn port_list(ports: &[PortRange], port: &dyn Fn(u16) -> String) -> String {
    ports
        .iter()
        .map(|r| match r.first == r.last {
            true => port(r.first),
            false => format!("{}:{}", port(r.first), port(r.last)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `MIN` or `MIN:MAX`.
fn range(r: &PortRange) -> String {
    match r.first == r.last {
        true => r.first.to_string(),
        false => format!("{}:{}", r.first, r.last),
    }
}
