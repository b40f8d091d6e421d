//! Each rule's constraint on each packet field, as a set of the field's values (`None`: the
//! rule does not look at the field), in the encodings of `pcn_iptables_common::field`.

use super::addrtype::AddressTypes;

use super::interval::{Interval, Values};
use super::{CompileError, all_of};
use crate::ruleset::model::{
    Limit, Match, MultiportDir, Negatable, PortRange, Rule, TcpFlags, TtlMode,
};

pub type Constraint = Option<Negatable<Values>>;
type Result<T> = std::result::Result<T, CompileError>;

/// Every rule's constraint on one field.
pub fn each(rules: &[Rule], f: impl Fn(&Rule) -> Result<Constraint>) -> Result<Vec<Constraint>> {
    rules.iter().map(f).collect()
}

fn values(intervals: impl IntoIterator<Item = (u32, u32)>, negated: bool) -> Negatable<Values> {
    Negatable {
        value: Values::new(
            intervals
                .into_iter()
                // A reversed range (`--length 5:3`, `--src-range` high-low) holds nothing.
                .filter(|(first, last)| first <= last)
                .map(|(first, last)| Interval { first, last })
                .collect(),
        ),
        negated,
    }
}

fn ranges(r: &[PortRange], negated: bool) -> Negatable<Values> {
    values(r.iter().map(|p| (p.first as u32, p.last as u32)), negated)
}

/// `-s`/`-d`, and `-m iprange`'s ranges, all of which must hold.
pub fn address(rule: &Rule, source: bool) -> Result<Constraint> {
    let net = if source { &rule.src } else { &rule.dst };
    let net = net.as_ref().map(|n| {
        values(
            [(u32::from(n.value.network()), u32::from(n.value.broadcast()))],
            n.negated,
        )
    });
    let ranges = rule.matches.iter().filter_map(|m| match m {
        Match::Iprange { src, dst } => {
            let r = if source { src } else { dst };
            r.as_ref()
                .map(|r| values([(r.value.first.into(), r.value.last.into())], r.negated))
        }
        _ => None,
    });
    Ok(all_of(net.into_iter().chain(ranges), u32::MAX))
}

pub fn proto(rule: &Rule) -> Result<Constraint> {
    Ok(rule
        .proto
        .as_ref()
        .map(|p| values([(p.value as u32, p.value as u32)], p.negated)))
}

/// The rule's connection states, as a set of conntrack::ctstate values.
pub fn ctstates(rule: &Rule) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Conntrack { states, .. } => Some(values(
            (0..8u32)
                .filter(|bit| states.value & (1 << bit) != 0)
                .map(|v| (v, v)),
            states.negated,
        )),
        _ => None,
    });
    Ok(all_of(each, u8::MAX as u32))
}

/// The source or destination port: tcp/udp `--sport`/`--dport`, multiport's `--sports`/
/// `--dports`, and `! --ports` (neither port in the list).
pub fn ports(rule: &Rule, source: bool) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Ports {
            sport,
            dport,
            tcp_flags,
            ..
        } => match if source { sport } else { dport } {
            Some(p) => Some(ranges(&[p.value], p.negated)),
            // `-m tcp`/`-m udp` alone still reads the header: no later fragment matches.
            None if source && dport.is_none() && tcp_flags.is_none() => {
                Some(values([(0, u16::MAX as u32)], false))
            }
            None => None,
        },
        Match::Multiport { dir, ports } => {
            let mine = match dir {
                MultiportDir::Source => source,
                MultiportDir::Destination => !source,
                MultiportDir::Either => ports.negated,
            };
            mine.then(|| ranges(&ports.value, ports.negated))
        }
        _ => None,
    });
    Ok(all_of(each, u16::MAX as u32))
}

/// `--ports LIST`: the same list on ANY_PORT_SRC and ANY_PORT_DST, which the data plane ORs.
pub fn any_port(rule: &Rule) -> Result<Constraint> {
    let mut lists = rule.matches.iter().filter_map(|m| match m {
        Match::Multiport {
            dir: MultiportDir::Either,
            ports,
        } if !ports.negated => Some(ranges(&ports.value, false)),
        _ => None,
    });
    let first = lists.next();
    if lists.next().is_some() {
        // (s or d in A) and (s or d in B) is no single OR pair.
        return Err(CompileError::Unsupported(
            "more than one -m multiport --ports in a rule".into(),
        ));
    }
    Ok(first)
}

/// `--icmp-type`: `type << 8 | code`; `any` is every type.
pub fn icmp(rule: &Rule) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Icmp(t) => {
            let v = t.value;
            let (first, last) = match v.kind {
                0xFF => (0, 0xFFFF),
                kind => {
                    let kind = (kind as u32) << 8;
                    (kind | v.code_min as u32, kind | v.code_max as u32)
                }
            };
            Some(values([(first, last)], t.negated))
        }
        _ => None,
    });
    Ok(all_of(each, 0xFFFF))
}

/// `--tcp-flags`/`--syn`: every flags byte `f` with `f & mask == comp`.
pub fn tcp_flags(rule: &Rule) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Ports {
            tcp_flags: Some(Negatable { value, negated }),
            ..
        } => {
            let TcpFlags { mask, comp } = *value;
            let bytes = (0..=255u32).filter(|f| (*f as u8 & mask) == comp);
            Some(values(bytes.map(|f| (f, f)), *negated))
        }
        _ => None,
    });
    Ok(all_of(each, u8::MAX as u32))
}

pub fn length(rule: &Rule) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Length(l) => Some(ranges(&[l.value], l.negated)),
        _ => None,
    });
    Ok(all_of(each, u16::MAX as u32))
}

pub fn ttl(rule: &Rule) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Ttl { mode, value } => {
            let v = *value as u32;
            Some(match mode {
                TtlMode::Eq => values([(v, v)], false),
                TtlMode::Ne => values([(v, v)], true),
                // Empty when v is 0 (lt) or 255 (gt): the filter drops the reversed range.
                TtlMode::Lt => values(
                    [(0, v.wrapping_sub(1))].into_iter().filter(|_| v > 0),
                    false,
                ),
                TtlMode::Gt => values([(v + 1, 255)], false),
            })
        }
        _ => None,
    });
    Ok(all_of(each, u8::MAX as u32))
}

/// `-f`: value 1 for a non-first fragment, 0 otherwise.
pub fn fragment(rule: &Rule) -> Result<Constraint> {
    Ok(rule.fragment.as_ref().map(|f| values([(1, 1)], f.negated)))
}

/// `--src-type`/`--dst-type`: the addresses whose type is one of the set bits (the field is
/// keyed by the address, see `addrtype`).
pub fn addrtype(rule: &Rule, source: bool, types: &AddressTypes) -> Result<Constraint> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Addrtype { src, dst } => {
            let t = if source { src } else { dst };
            t.as_ref().map(|t| Negatable {
                value: types.addresses(t.value as u32),
                negated: t.negated,
            })
        }
        _ => None,
    });
    Ok(all_of(each, u32::MAX))
}

/// Every `--mac-source` of the rule (all must hold).
pub fn mac(rule: &Rule) -> Vec<Negatable<[u8; 6]>> {
    rule.matches
        .iter()
        .filter_map(|m| match m {
            Match::Mac(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// The rule's `-m limit`, if any (one at most).
pub fn limit(rule: &Rule) -> Result<Option<Limit>> {
    let mut limits = rule.matches.iter().filter_map(|m| match m {
        Match::Limit(l) => Some(*l),
        _ => None,
    });
    let first = limits.next();
    if limits.next().is_some() {
        return Err(CompileError::Unsupported(
            "more than one -m limit in a rule".into(),
        ));
    }
    Ok(first)
}
