//! libxt_multiport (revision 1): `--sports`, `--dports`, `--ports`, up to 15 ports, a range
//! counting as two.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry};
use crate::error::Result;
use crate::model::{IPPROTO_TCP, IPPROTO_UDP, Match, MultiportDir, Negatable, PortRange};

pub struct Multiport;

impl Extension for Multiport {
    fn name(&self) -> &'static str {
        "multiport"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Multiport {
            dir: MultiportDir::Either,
            ports: Negatable::plain(Vec::new()),
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
        parse(v.as_match(), id, arg, invert, cx)
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(crate::xtables::param("multiport expection an option"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Multiport { dir, ports } = m else {
            return;
        };
        let option = dir.name();
        let _ = write!(
            out,
            "{} --{option} {}",
            bang(ports.negated),
            port_list(&ports.value, &|p| p.to_string())
        );
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        let Match::Multiport { dir, ports } = m else {
            return;
        };
        let dir = dir.name();
        let proto = show
            .rule
            .proto
            .as_ref()
            .and_then(|p| proto_name(p.value))
            .unwrap_or_default();
        let service = |p: u16| match show.db.service_name(p, proto).filter(|_| !show.numeric) {
            Some(service) => service.to_string(),
            None => p.to_string(),
        };
        let _ = write!(
            out,
            " multiport {dir} {}{}",
            bang(ports.negated),
            port_list(&ports.value, &service)
        );
    }

    /// `--sports`/`--dports` constrain their port; `! --ports` both (neither port is in the
    /// list); `--ports` the either-port pair, which the data plane ORs.
    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let Match::Multiport { dir, ports } = m else {
            return None;
        };
        let mine = match field {
            Field::Sport => {
                *dir == MultiportDir::Source || (*dir == MultiportDir::Either && ports.negated)
            }
            Field::Dport => {
                *dir == MultiportDir::Destination || (*dir == MultiportDir::Either && ports.negated)
            }
            Field::AnyPort => *dir == MultiportDir::Either && !ports.negated,
            _ => false,
        };
        let ranges = ports.value.iter().map(|p| (p.first as u32, p.last as u32));
        mine.then(|| Want::ranges(ranges, ports.negated))
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
use crate::xtables::value::xtables_uint;

const ANY: u32 = 0b111;
pub const ENTRIES: [Entry; 5] = [
    entry("source-ports", 0, true, ANY),
    entry("sports", 0, true, ANY),
    entry("destination-ports", 1, true, ANY),
    entry("dports", 1, true, ANY),
    entry("ports", 2, true, ANY),
];

/// xt_multiport's `XT_MULTI_PORTS`.
pub const MAX_PORTS: usize = 15;

/// The protocols multiport takes, by the name it gives their services.
pub(crate) fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        136 => "udplite",
        132 => "sctp",
        33 => "dccp",
        _ => return None,
    })
}

pub fn parse(m: &mut Match, id: u8, arg: &str, invert: bool, cx: &mut Context) -> Result<()> {
    // check_proto: -p must already name one of its protocols.
    let only = "multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP";
    let proto = match cx.proto {
        Some(p) if p.negated => return Err(crate::xtables::param(only)),
        Some(p) if p.value != 0 => p.value,
        _ => {
            return Err(crate::xtables::param(
                "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
            ));
        }
    };
    let name = proto_name(proto).ok_or_else(|| crate::xtables::param(only))?;
    let ranges = parse_ports(cx, arg, name)?;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        // The data plane reads ports of TCP and UDP only.
        return Err(crate::xtables::unsupported(format_args!(
            "multiport with -p {name}"
        )));
    }
    *m = Match::Multiport {
        dir: match id {
            0 => MultiportDir::Source,
            1 => MultiportDir::Destination,
            _ => MultiportDir::Either,
        },
        ports: Negatable {
            value: ranges,
            negated: invert,
        },
    };
    Ok(())
}

/// `parse_multi_ports_v1`
fn parse_ports(cx: &Context, text: &str, proto: &str) -> Result<Vec<PortRange>> {
    let port = |s: &str| {
        xtables_uint(s, 0, u16::MAX as u64)
            .map(|p| p as u16)
            .or_else(|| cx.db.service_port(s, proto))
            .ok_or_else(|| crate::xtables::param(format!("invalid port/service `{s}' specified")))
    };
    let too_many = || crate::xtables::param("too many ports specified");
    let mut ranges = Vec::new();
    let mut slots = 0;
    for part in text.split(',') {
        if slots == MAX_PORTS {
            return Err(too_many());
        }
        match part.split_once(':') {
            Some((first, last)) => {
                if slots == MAX_PORTS - 1 {
                    return Err(too_many());
                }
                let (first, last) = (port(first)?, port(last)?);
                if first >= last {
                    return Err(crate::xtables::param("invalid portrange specified"));
                }
                ranges.push(PortRange { first, last });
                slots += 2;
            }
            None => {
                let p = port(part)?;
                ranges.push(PortRange { first: p, last: p });
                slots += 1;
            }
        }
    }
    Ok(ranges)
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "multiport match options:\n",
    "[!] --source-ports port[,port:port,port...]\n",
    " --sports ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-ports port[,port:port,port...]\n",
    " --dports ...\n",
    "\t\t\t\tmatch destination port(s)\n",
    "[!] --ports port[,port:port,port]\n",
    "\t\t\t\tmatch both source and destination port(s)\n",
);
