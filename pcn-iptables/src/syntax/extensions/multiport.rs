//! libxt_multiport (revision 1): `--sports`, `--dports`, `--ports`, up to 15 ports, a range
//! counting as two.

use super::{Context, Entry, entry};
use crate::error::Result;
use crate::ruleset::model::{IPPROTO_TCP, IPPROTO_UDP, Match, MultiportDir, Negatable, PortRange};
use crate::syntax::value::xtables_uint;

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
        Some(p) if p.negated => return Err(super::param(only)),
        Some(p) if p.value != 0 => p.value,
        _ => {
            return Err(super::param(
                "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
            ));
        }
    };
    let name = proto_name(proto).ok_or_else(|| super::param(only))?;
    let ranges = parse_ports(cx, arg, name)?;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        // The data plane reads ports of TCP and UDP only.
        return Err(crate::syntax::command::unsupported(format_args!(
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
            .ok_or_else(|| super::param(format!("invalid port/service `{s}' specified")))
    };
    let too_many = || super::param("too many ports specified");
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
                    return Err(super::param("invalid portrange specified"));
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
