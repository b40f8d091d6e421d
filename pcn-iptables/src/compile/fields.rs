//! Each rule's constraint on each packet field, as a set of the field's values (`None`: the
//! rule does not look at the field), in the encodings of `pcn_iptables_common::field`. What a
//! match asks of a field comes from its extension ([`crate::ext::Extension::want`]).

use super::addrtype::AddressTypes;

use super::atoms::all_of;
use super::interval::{Interval, Values};
use super::types::CompileError;
use crate::ext::{self, Field, Want};
use crate::model::{
    AddrMask, AddrtypeIface, Connlimit, Hashlimit, Limit, MarkMask, Match, Negatable, Owner,
    PortRange, Recent, Rule, SctpChunks, SpiRange, Statistic, TimeMatch,
};
use pcn_iptables_common::{connlimit, recent};

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

/// What the rule's matches ask of `field`, in order.
fn wants(rule: &Rule, field: Field) -> impl Iterator<Item = Want> + '_ {
    rule.matches
        .iter()
        .filter_map(move |m| ext::of(m).want(m, field))
}

/// The value sets the rule's matches ask of `field`.
fn sets(rule: &Rule, field: Field) -> impl Iterator<Item = Negatable<Values>> + '_ {
    wants(rule, field).filter_map(|w| match w {
        Want::Ranges(r) => Some(values(r.value, r.negated)),
        _ => None,
    })
}

/// `-s`/`-d` with a prefix, and the matches' address ranges (`-m iprange`), all of which must
/// hold. Another mask is the rule's own check (`masked`).
pub fn address(rule: &Rule, source: bool) -> Result<Constraint> {
    let net = if source { &rule.src } else { &rule.dst };
    let net = net
        .as_ref()
        .and_then(|n| Some(values([n.value.range()?], n.negated)));
    let field = if source { Field::Src } else { Field::Dst };
    Ok(all_of(net.into_iter().chain(sets(rule, field)), u32::MAX))
}

pub fn proto(rule: &Rule) -> Result<Constraint> {
    Ok(rule
        .proto
        .as_ref()
        .map(|p| values([(p.value as u32, p.value as u32)], p.negated)))
}

/// The rule's connection states, as a set of conntrack::ctstate values.
pub fn ctstates(rule: &Rule) -> Result<Constraint> {
    Ok(all_of(sets(rule, Field::CtState), u8::MAX as u32))
}

/// The source or destination port: tcp/udp `--sport`/`--dport`, multiport's `--sports`/
/// `--dports`, and `! --ports` (neither port in the list).
pub fn ports(rule: &Rule, source: bool) -> Result<Constraint> {
    let field = if source { Field::Sport } else { Field::Dport };
    Ok(all_of(sets(rule, field), u16::MAX as u32))
}

/// `--ports LIST`: the same list on ANY_PORT_SRC and ANY_PORT_DST, which the data plane ORs.
pub fn any_port(rule: &Rule) -> Result<Constraint> {
    let mut lists = sets(rule, Field::AnyPort);
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
    Ok(all_of(sets(rule, Field::Icmp), 0xFFFF))
}

/// `--tcp-flags`/`--syn`: every flags byte `f` with `f & mask == comp`.
pub fn tcp_flags(rule: &Rule) -> Result<Constraint> {
    Ok(all_of(sets(rule, Field::TcpFlags), u8::MAX as u32))
}

pub fn length(rule: &Rule) -> Result<Constraint> {
    Ok(all_of(sets(rule, Field::Length), u16::MAX as u32))
}

pub fn ttl(rule: &Rule) -> Result<Constraint> {
    Ok(all_of(sets(rule, Field::Ttl), u8::MAX as u32))
}

/// The TOS bytes the rule's `-m tos`, `-m dscp` and `-m ecn --ecn-ip-ect` let through, one
/// bit each (`Action::tos_set`), if it has any of them: a check of the rule's own, as few
/// rules look at the byte and a field costs every packet of the chain a lookup.
pub fn tos(rule: &Rule) -> Option<[u8; 32]> {
    let allowed = all_of(sets(rule, Field::Tos), u8::MAX as u32)?;
    let mut set = [0u8; 32];
    for i in allowed.value.intervals() {
        for t in i.first..=i.last.min(u8::MAX as u32) {
            set[t as usize / 8] |= 1 << (t % 8);
        }
    }
    if allowed.negated {
        set = set.map(|b| !b);
    }
    Some(set)
}

/// `-f`: value 1 for a non-first fragment, 0 otherwise.
pub fn fragment(rule: &Rule) -> Result<Constraint> {
    Ok(rule.fragment.as_ref().map(|f| values([(1, 1)], f.negated)))
}

/// `--src-type`/`--dst-type`: the addresses whose type is one of the set bits (the field is
/// keyed by the address, see `addrtype`).
pub fn addrtype(rule: &Rule, source: bool, types: &AddressTypes) -> Result<Constraint> {
    let field = if source {
        Field::SrcType
    } else {
        Field::DstType
    };
    let each = wants(rule, field).filter_map(|w| match w {
        Want::AddressTypes(t) => Some(Negatable {
            value: types.addresses(t.value as u32),
            negated: t.negated,
        }),
        _ => None,
    });
    Ok(all_of(each, u32::MAX))
}

/// Every `--mac-source` of the rule (all must hold).
pub fn mac(rule: &Rule) -> Vec<Negatable<[u8; 6]>> {
    wants(rule, Field::MacSource)
        .filter_map(|w| match w {
            Want::Mac(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// The rule's one want of `field`, if any: the rule's `Action` has room for one, so a second
/// (of `what`) is refused.
fn one(rule: &Rule, field: Field, what: &str) -> Result<Option<Want>> {
    let mut found = wants(rule, field);
    let first = found.next();
    if found.next().is_some() {
        return Err(CompileError::Unsupported(format!(
            "more than one {what} in a rule"
        )));
    }
    Ok(first)
}

/// The rule's `-m limit`, if any.
pub fn limit(rule: &Rule) -> Result<Option<Limit>> {
    Ok(match one(rule, Field::Limit, "-m limit")? {
        Some(Want::Limit(l)) => Some(l),
        _ => None,
    })
}

/// The rule's `-m conntrack` tuple addresses, protocol and direction, if any.
pub fn ct_tuple(rule: &Rule) -> Result<Option<Want>> {
    one(
        rule,
        Field::CtTuple,
        "-m conntrack with --ctorigsrc, --ctorigdst, --ctreplsrc, --ctrepldst, --ctproto or \
         --ctdir",
    )
}

/// Whether a match that can fail (not a comment) follows the first match `is` picks out.
fn followed(rule: &Rule, is: impl Fn(&Match) -> bool) -> bool {
    rule.matches
        .iter()
        .skip_while(|m| !is(m))
        .skip(1)
        .any(|m| !matches!(m, Match::Comment(_)))
}

/// The rule's `-m statistic`, if any. The data plane draws or counts once the rest of the
/// rule matched, where xt_statistic does when the packet reaches it: the same unless a match
/// that can fail follows an nth count, or a bucket meets a draw.
pub fn statistic(rule: &Rule) -> Result<Option<Negatable<Statistic>>> {
    let Some(Want::Statistic(first)) = one(rule, Field::Statistic, "-m statistic")? else {
        return Ok(None);
    };
    let unsupported = |what: &str| Err(CompileError::Unsupported(what.into()));
    if limit(rule)?.is_some() {
        return unsupported("-m statistic with -m limit in one rule");
    }
    if first.value.nth && followed(rule, |m| matches!(m, Match::Statistic(_))) {
        return unsupported("a match after -m statistic --mode nth");
    }
    Ok(Some(first))
}

/// The rule's `-m recent`, if any. The data plane checks the list once the rest of the rule
/// matched, where xt_recent does when the packet reaches it: the same unless a match that can
/// fail follows it.
pub fn recent(rule: &Rule) -> Result<Option<Recent>> {
    let Some(Want::Recent(r)) = one(rule, Field::Recent, "-m recent")? else {
        return Ok(None);
    };
    let unsupported = |what: String| Err(CompileError::Unsupported(what));
    if followed(rule, |m| matches!(m, Match::Recent(_))) {
        return unsupported("a match after -m recent".into());
    }
    if r.hitcount > recent::MAX_HITCOUNT {
        return unsupported(format!(
            "-m recent --hitcount above {}",
            recent::MAX_HITCOUNT
        ));
    }
    Ok(Some(r))
}

/// The rule's `-m connlimit`, if any. The data plane counts once the rest of the rule
/// matched, where xt_connlimit does when the packet reaches it (adding its connection to the
/// rule's list): the same unless a match that can fail follows it. A rule has room for one
/// such last check: not with `-m recent`. A list holds `connlimit::CONNS` connections, so
/// the limit must be below that.
pub fn connlimit(rule: &Rule) -> Result<Option<Connlimit>> {
    let Some(Want::Connlimit(c)) = one(rule, Field::Connlimit, "-m connlimit")? else {
        return Ok(None);
    };
    let unsupported = |what: String| Err(CompileError::Unsupported(what));
    if followed(rule, |m| matches!(m, Match::Connlimit(_))) {
        return unsupported("a match after -m connlimit".into());
    }
    if recent(rule)?.is_some() {
        return unsupported("-m connlimit with -m recent in one rule".into());
    }
    if c.limit > connlimit::MAX_LIMIT {
        return unsupported(format!(
            "-m connlimit with a limit above {}",
            connlimit::MAX_LIMIT
        ));
    }
    Ok(Some(c))
}

/// The rule's `-m hashlimit`, if any. The data plane takes from the bucket once the rest of
/// the rule matched, where xt_hashlimit does when the packet reaches it: the same unless a
/// match that can fail follows it. One such last check a rule: not with `-m recent` or
/// `-m connlimit`.
pub fn hashlimit(rule: &Rule) -> Result<Option<Hashlimit>> {
    let Some(Want::Hashlimit(h)) = one(rule, Field::Hashlimit, "-m hashlimit")? else {
        return Ok(None);
    };
    let unsupported = |what: &str| Err(CompileError::Unsupported(what.into()));
    if followed(rule, |m| matches!(m, Match::Hashlimit(_))) {
        return unsupported("a match after -m hashlimit");
    }
    if recent(rule)?.is_some() || connlimit(rule)?.is_some() {
        return unsupported("-m hashlimit with -m recent or -m connlimit in one rule");
    }
    Ok(Some(h))
}

/// The rule's `--tcp-option`, if any.
pub fn tcp_option(rule: &Rule) -> Result<Option<Negatable<u8>>> {
    Ok(match one(rule, Field::TcpOption, "--tcp-option")? {
        Some(Want::TcpOption(o)) => Some(o),
        _ => None,
    })
}

/// The rule's `--chunk-types`, if any.
/// The rule's `-m addrtype` with `--limit-iface-in/out`, if any: (flags, `--src-type` and
/// `--dst-type` sets) as `Action` has them.
pub fn addrtype_iface(rule: &Rule) -> Result<Option<(u8, [u16; 2])>> {
    use pcn_iptables_common::addrtype::flag;
    let what = "-m addrtype with --limit-iface-in or --limit-iface-out";
    Ok(match one(rule, Field::AddrtypeIface, what)? {
        Some(Want::AddrtypeIface { iface, src, dst }) => {
            let mut flags = match iface {
                AddrtypeIface::Out => flag::OUT,
                _ => flag::IN,
            };
            let set = |t: &Option<Negatable<u16>>, invert: u8, flags: &mut u8| {
                t.as_ref().map_or(0, |t| {
                    *flags |= if t.negated { invert } else { 0 };
                    t.value
                })
            };
            let types = [
                set(&src, flag::INVERT_SRC, &mut flags),
                set(&dst, flag::INVERT_DST, &mut flags),
            ];
            Some((flags, types))
        }
        _ => None,
    })
}

pub fn sctp_chunks(rule: &Rule) -> Result<Option<Negatable<SctpChunks>>> {
    Ok(match one(rule, Field::SctpChunks, "--chunk-types")? {
        Some(Want::SctpChunks(c)) => Some(c),
        _ => None,
    })
}

/// The rule's `-m sctp` or `-m dccp`, if it has one; several (`-m dccp --sport 1 -m dccp
/// --dport 2`, which iptables takes: all must hold) as one, where the rule's `Action` can
/// hold what they ask together.
pub fn proto_ports(rule: &Rule) -> Result<Option<Want>> {
    const WHAT: &str = "more than one -m sctp or -m dccp in a rule";
    let mut all = wants(rule, Field::Ports);
    let Some(mut got) = all.next() else {
        return Ok(None);
    };
    for w in all {
        let (
            Want::Ports {
                proto,
                sport,
                dport,
                dccp_types,
                dccp_option,
            },
            Want::Ports {
                proto: p2,
                sport: s2,
                dport: d2,
                dccp_types: t2,
                dccp_option: o2,
            },
        ) = (got, w)
        else {
            return unsupported(WHAT);
        };
        let ports = |a: Option<Negatable<PortRange>>, b: Option<Negatable<PortRange>>| {
            Ok(match (a, b) {
                (None, x) | (x, None) => x,
                (Some(a), Some(b)) => Some(port_range(both(range_of(&a), range_of(&b)).ok_or(())?)),
            })
        };
        // Option types: one a rule.
        let option = match (dccp_option, o2) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => return unsupported(WHAT),
        };
        got = Want::Ports {
            proto: if proto == p2 {
                proto
            } else {
                return unsupported(WHAT);
            },
            sport: ports(sport, s2).or_else(|()| unsupported(WHAT))?,
            dport: ports(dport, d2).or_else(|()| unsupported(WHAT))?,
            dccp_types: match (dccp_types, t2) {
                (None, x) | (x, None) => x,
                // Sets of 16 types: their intersection, always one set.
                (Some(a), Some(b)) => {
                    let set = |t: Negatable<u16>| if t.negated { !t.value } else { t.value };
                    Some(Negatable::plain(set(a) & set(b)))
                }
            },
            dccp_option: option,
        };
    }
    Ok(Some(got))
}

fn unsupported<T>(what: &str) -> Result<T> {
    Err(CompileError::Unsupported(what.into()))
}

/// An inclusive range of values, negated or not.
type Range = Negatable<(u32, u32)>;

fn range_of(p: &Negatable<PortRange>) -> Range {
    Negatable {
        value: (p.value.first as u32, p.value.last as u32),
        negated: p.negated,
    }
}

fn port_range(r: Range) -> Negatable<PortRange> {
    Negatable {
        value: PortRange {
            first: r.value.0 as u16,
            last: r.value.1 as u16,
        },
        negated: r.negated,
    }
}

/// The values in both `a` and `b`, if one range (negated or not) says them: `None` where it
/// takes two. A range that holds nothing comes out reversed (`first > last`), as the data
/// plane's checks take it.
fn both(a: Range, b: Range) -> Option<Range> {
    let ((a0, a1), (b0, b1)) = (a.value, b.value);
    // A reversed range holds nothing: `!` of it everything.
    let empty = |r: &Range| r.value.0 > r.value.1;
    let plain = |lo: u32, hi: u32| Some(Negatable::plain((lo, hi)));
    match (a.negated, b.negated) {
        (false, false) => plain(a0.max(b0), a1.min(b1)),
        (true, true) if empty(&a) => Some(b),
        (true, true) if empty(&b) => Some(a),
        // Neither: one range, if the two overlap or touch.
        (true, true) if a0 <= b1.saturating_add(1) && b0 <= a1.saturating_add(1) => {
            Some(Negatable {
                value: (a0.min(b0), a1.max(b1)),
                negated: true,
            })
        }
        (true, true) => None,
        (false, true) | (true, false) => {
            let (keep, cut) = if a.negated { (b, a) } else { (a, b) };
            let ((k0, k1), (c0, c1)) = (keep.value, cut.value);
            if empty(&keep) || empty(&cut) || c1 < k0 || c0 > k1 {
                Some(keep)
            } else if c0 <= k0 && c1 >= k1 {
                plain(1, 0)
            } else if c0 <= k0 {
                plain(c1 + 1, k1)
            } else if c1 >= k1 {
                plain(k0, c0 - 1)
            } else {
                // The cut inside: two pieces.
                None
            }
        }
    }
}

/// The one range of several negatable ranges' intersection, or `what` refused.
fn all_ranges(ranges: impl Iterator<Item = Range>, what: &str) -> Result<Option<Range>> {
    let mut got: Option<Range> = None;
    for r in ranges {
        got = Some(match got {
            None => r,
            Some(g) => match both(g, r) {
                Some(x) => x,
                None => return unsupported(what),
            },
        });
    }
    Ok(got)
}

/// The rule's `-m time`, if any.
pub fn time(rule: &Rule) -> Result<Option<TimeMatch>> {
    Ok(match one(rule, Field::Time, "-m time")? {
        Some(Want::Time(t)) => Some(t),
        _ => None,
    })
}

/// The rule's `-m tcpmss`, if any (several as one, where one range says what they ask
/// together).
pub fn tcpmss(rule: &Rule) -> Result<Option<Negatable<PortRange>>> {
    let ranges = wants(rule, Field::Tcpmss).filter_map(|w| match w {
        Want::Tcpmss(t) => Some(range_of(&t)),
        _ => None,
    });
    Ok(all_ranges(ranges, "more than one -m tcpmss in a rule")?.map(port_range))
}

/// The rule's `-m esp` or `-m ah`, if any (several as one, where one range says what they
/// ask together).
pub fn spi(rule: &Rule) -> Result<Option<Negatable<SpiRange>>> {
    let ranges = wants(rule, Field::Spi).filter_map(|w| match w {
        Want::Spi(s) => Some(Negatable {
            value: (s.value.first, s.value.last),
            negated: s.negated,
        }),
        _ => None,
    });
    let got = all_ranges(ranges, "more than one -m esp or -m ah in a rule")?;
    Ok(got.map(|r| Negatable {
        value: SpiRange {
            first: r.value.0,
            last: r.value.1,
        },
        negated: r.negated,
    }))
}

/// The rule's `-m mark` (`field` Mark) or `-m connmark` (Connmark), if any.
pub fn mark(rule: &Rule, field: Field) -> Result<Option<Negatable<MarkMask>>> {
    let what = match field {
        Field::Mark => "-m mark",
        _ => "-m connmark",
    };
    Ok(match one(rule, field, what)? {
        Some(Want::Mark(m)) => Some(m),
        _ => None,
    })
}

/// The rule's `-m owner`, if any.
pub fn owner(rule: &Rule) -> Result<Option<Owner>> {
    let Some(Want::Owner(o)) = one(rule, Field::Owner, "-m owner")? else {
        return Ok(None);
    };
    Ok(Some(o))
}

/// The rule's `-m pkttype`: the type and `!`, if any.
pub fn pkttype(rule: &Rule) -> Result<Option<Negatable<u8>>> {
    Ok(match one(rule, Field::PktType, "-m pkttype")? {
        Some(Want::PktType(t)) => Some(t),
        _ => None,
    })
}

/// Whether a match needs the chain to look at every packet (see `flags`).
pub fn per_packet(m: &Match) -> bool {
    ext::of(m).per_packet(m)
}

/// The rule's `-s` and `-d` whose masks are not prefixes, which it checks itself.
pub fn masked(rule: &Rule) -> [Option<&Negatable<AddrMask>>; 2] {
    [&rule.src, &rule.dst].map(|n| n.as_ref().filter(|n| n.value.prefix().is_none()))
}

/// Whether a match puts a check of the rule's own in front of its action: a token bucket,
/// the connection's tuples, protocol or direction, a draw or count, the packet type, the TOS
/// byte.
pub fn checked(m: &Match) -> bool {
    let e = ext::of(m);
    [
        Field::Limit,
        Field::CtTuple,
        Field::Statistic,
        Field::PktType,
        Field::Tos,
        Field::Recent,
        Field::Connlimit,
        Field::Time,
        Field::Tcpmss,
        Field::Spi,
        Field::Mark,
        Field::Connmark,
        Field::Owner,
        Field::Hashlimit,
        Field::Ports,
        Field::TcpOption,
        Field::SctpChunks,
        Field::AddrtypeIface,
    ]
    .into_iter()
    .any(|f| e.want(m, f).is_some())
}

/// The `pcn_iptables_common::hotdrop` bits of the rule's matches: the packets cut short it
/// drops once its other checks passed.
pub fn hotdrops(rule: &Rule) -> u8 {
    rule.matches
        .iter()
        .fold(0, |bits, m| bits | ext::of(m).hotdrops(m))
}

/// Whether a match needs connections tracked.
pub fn tracks(m: &Match) -> bool {
    ext::of(m).tracks()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `v` is in range `r` (negated or not; a reversed range holds nothing).
    fn holds(r: &Range, v: u32) -> bool {
        (r.value.0 <= v && v <= r.value.1) != r.negated
    }

    #[test]
    fn two_ranges_as_one_where_one_says_them() {
        const DOMAIN: u32 = 9;
        let mut ranges = vec![];
        for first in 0..=7 {
            for last in 0..=7 {
                for negated in [false, true] {
                    ranges.push(Negatable {
                        value: (first, last),
                        negated,
                    });
                }
            }
        }
        let mut refused = 0;
        for a in &ranges {
            for b in &ranges {
                let want: Vec<bool> = (0..=DOMAIN).map(|v| holds(a, v) && holds(b, v)).collect();
                match both(a.clone(), b.clone()) {
                    Some(r) => {
                        let got: Vec<bool> = (0..=DOMAIN).map(|v| holds(&r, v)).collect();
                        assert_eq!(got, want, "{a:?} and {b:?} gave {r:?}");
                        assert!(holds(&r, u32::MAX) == (holds(a, u32::MAX) && holds(b, u32::MAX)));
                    }
                    None => {
                        refused += 1;
                        // No one range says them.
                        let said = |r: &Range| (0..=DOMAIN).map(|v| holds(r, v)).eq(want.clone());
                        assert!(!ranges.iter().any(said), "{a:?} and {b:?}");
                    }
                }
            }
        }
        assert!(refused > 0);
    }
}
