//! The checks the kernel makes when a table is committed: loops, and `checkentry` of each
//! rule reachable from a hook. A filter chain stored unchanged is checked from its summary.

use std::collections::HashMap;

use pcn_iptables_common::{reject, rewrite::CLAMP_PMTU};

use super::apply::STANDARD;
use super::names::no_chain;
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::ext::{connmark_target, ecn, hashlimit, limit, owner, recent, tcpmss_target};
use crate::model::{
    AddrtypeIface, Chain, IPPROTO_AH, IPPROTO_ESP, IPPROTO_ICMP, IPPROTO_TCP, Match, NatKind, Rule,
    Rules, Summary, Table, TableName, Target,
};

fn plain(message: &str) -> Error {
    Error::plain(OTHER_PROBLEM, message)
}

fn invalid() -> Error {
    plain("Invalid argument. Run `dmesg' for more information")
}

/// The checks the kernel makes when a table is committed (libiptc's errors come from
/// there): a loop reachable from a base chain, a match or target in a table or at a hook it
/// does not take, a port match whose protocol the rule does not have, a jump to `standard`.
/// Made once per commit rather than per rule, as iptables-restore does at COMMIT.
pub fn commit_checks(table: &Table, name: TableName) -> Result<()> {
    find_loop(table)?;
    let reach = reach(table);
    // A filter chain unchanged since it was stored passed these checks then: it is read
    // again only where it is now reached from a hook its rules were not checked for.
    let checked: Vec<(&Chain, u8)> = (table.chains.iter().zip(reach))
        .filter(|(c, hooks)| {
            name != TableName::Filter || c.rules.summary().is_none_or(|s| hooks & !s.hooks != 0)
        })
        .collect();
    for &(chain, hooks) in &checked {
        let end = walk_end(&chain.rules);
        for (i, rule) in chain.rules.iter().enumerate() {
            check_entry(
                rule,
                name,
                if end.is_some_and(|e| i > e) { 0 } else { hooks },
            )?;
        }
    }
    let mut rules = checked.iter().flat_map(|(c, _)| c.rules.iter());
    if rules.any(|r| r.target == Some(Target::Jump(STANDARD.into()))) {
        return Err(no_chain());
    }
    Ok(())
}

/// The ruleset's part of what a filter chain's stored rules tell of themselves
/// (`model::Summary`; the flags are the compiler's).
pub fn summary(rules: &[Rule]) -> Summary {
    let walk_end = rules.iter().position(ends_walk);
    let walked = &rules[..walk_end.map_or(rules.len(), |e| e + 1)];
    // Most rules may be reached from every hook: one check says so.
    let allowed = |rule: &Rule| match check_entry(rule, TableName::Filter, hook::ALL) {
        Ok(()) => hook::ALL,
        Err(_) => (0..5)
            .map(|b| 1u8 << b)
            .filter(|&hook| check_entry(rule, TableName::Filter, hook).is_ok())
            .fold(0, |all, hook| all | hook),
    };
    Summary {
        counters: rules.iter().map(|r| r.counter).collect(),
        jumps: (rules.iter().enumerate())
            .filter_map(|(i, r)| Some((i as u32, r.target.as_ref()?.chain()?.to_string())))
            .collect(),
        walk_end: walk_end.map(|e| e as u32),
        hooks: walked.iter().fold(hook::ALL, |all, r| all & allowed(r)),
        named: (rules.iter().flat_map(|r| &r.matches))
            .any(|m| matches!(m, Match::Recent(_) | Match::Hashlimit(_))),
        ..Summary::default()
    }
}

/// Netfilter's hooks, as the bits of a rule's hook mask (the kernel's `comefrom`).
mod hook {
    pub const PREROUTING: u8 = 1 << 0;
    pub const INPUT: u8 = 1 << 1;
    pub const FORWARD: u8 = 1 << 2;
    pub const OUTPUT: u8 = 1 << 3;
    pub const POSTROUTING: u8 = 1 << 4;
    pub const ALL: u8 = (1 << 5) - 1;

    /// The hook of a base chain.
    pub fn of(base: &str) -> u8 {
        match base {
            "PREROUTING" => PREROUTING,
            "INPUT" => INPUT,
            "FORWARD" => FORWARD,
            "OUTPUT" => OUTPUT,
            _ => POSTROUTING,
        }
    }
}

/// The hooks each chain can be reached from (in table order), as the kernel's
/// `mark_source_chains` marks its rules: its walk of a chain stops at an unconditional ACCEPT,
/// DROP or RETURN (`walk_end`), so the rules after one are reached from no hook at all.
fn reach(table: &Table) -> Vec<u8> {
    let index: HashMap<&str, usize> = (table.chains.iter().enumerate())
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut reach = vec![0u8; table.chains.len()];
    for (base, chain) in table.chains.iter().enumerate() {
        if chain.policy.is_none() {
            continue;
        }
        let bit = hook::of(&chain.name);
        let mut todo = vec![base];
        while let Some(at) = todo.pop() {
            if reach[at] & bit != 0 {
                continue;
            }
            reach[at] |= bit;
            let rules = &table.chains[at].rules;
            let end = walk_end(rules);
            for (i, to) in rules.jumps() {
                if end.is_some_and(|e| i > e) {
                    break;
                }
                todo.extend(index.get(to));
            }
        }
    }
    reach
}

/// The rule of `rules` that ends netfilter's walk of their chain, if any.
fn walk_end(rules: &Rules) -> Option<usize> {
    match rules.summary() {
        Some(s) => s.walk_end.map(|e| e as usize),
        None => rules.iter().position(ends_walk),
    }
}

/// An unconditional standard verdict (the kernel's `unconditional()` with a verdict < 0).
fn ends_walk(rule: &Rule) -> bool {
    rule.src.is_none()
        && rule.dst.is_none()
        && rule.in_iface.is_none()
        && rule.out_iface.is_none()
        && rule.proto.is_none()
        && rule.fragment.is_none()
        && rule.matches.is_empty()
        && matches!(
            rule.target,
            Some(Target::Accept | Target::Drop | Target::Return)
        )
}

/// The kernel's `checkentry` of a rule's matches and target, and xtables' checks of the table
/// and the hooks (`hooks`: those the rule can be reached from) they are valid in.
fn check_entry(rule: &Rule, table: TableName, hooks: u8) -> Result<()> {
    // The protocol matches and tcp-reset need `-p` to name their protocol, not negated.
    let proto_is = |proto: u8| {
        rule.proto
            .as_ref()
            .is_some_and(|p| !p.negated && p.value == proto)
    };
    let only = |allowed: u8| hooks & !allowed == 0;
    for m in &rule.matches {
        let ok = match m {
            Match::Ports { proto, .. } => proto_is(*proto),
            Match::Icmp(_) => proto_is(IPPROTO_ICMP),
            Match::Tcpmss(_) => proto_is(IPPROTO_TCP),
            Match::Esp(_) => proto_is(IPPROTO_ESP),
            Match::Ah(_) => proto_is(IPPROTO_AH),
            Match::Sctp { .. } => proto_is(pcn_iptables_common::IPPROTO_SCTP),
            Match::Dccp { .. } => proto_is(pcn_iptables_common::IPPROTO_DCCP),
            Match::Mac(_) => only(hook::PREROUTING | hook::INPUT | hook::FORWARD),
            // xt_addrtype: no input device after routing, no output device before.
            Match::Addrtype { iface, .. } => match iface {
                AddrtypeIface::Any => true,
                AddrtypeIface::In => only(hook::PREROUTING | hook::INPUT | hook::FORWARD),
                AddrtypeIface::Out => only(hook::OUTPUT | hook::FORWARD | hook::POSTROUTING),
            },
            m if ecn::reads_tcp(m) => proto_is(IPPROTO_TCP),
            Match::Recent(r) => recent::kernel_accepts(r),
            Match::Owner(o) => owner::kernel_accepts(o) && only(hook::OUTPUT | hook::POSTROUTING),
            Match::Limit(limit) if !limit::kernel_accepts(limit) => {
                return Err(plain("Numerical result out of range"));
            }
            Match::Hashlimit(h) => {
                let hz = crate::dataplane::hashlimit::hz()
                    .map_err(|e| Error::plain(OTHER_PROBLEM, e.to_string()))?;
                if let Some(errno) = hashlimit::kernel_refuses(h, hz) {
                    return Err(plain(errno));
                }
                true
            }
            _ => true,
        };
        if !ok {
            return Err(invalid());
        }
    }
    let ok = match &rule.target {
        // ipt_REJECT: the filter table only.
        Some(Target::Reject(with)) => {
            table == TableName::Filter && (*with != reject::TCP_RESET || proto_is(IPPROTO_TCP))
        }
        Some(Target::Nat(nat)) => {
            table == TableName::Nat
                && only(match nat.kind {
                    NatKind::Snat => hook::POSTROUTING | hook::INPUT,
                    NatKind::Dnat | NatKind::Redirect => hook::PREROUTING | hook::OUTPUT,
                    NatKind::Masquerade => hook::POSTROUTING,
                    NatKind::Netmap => {
                        hook::PREROUTING | hook::POSTROUTING | hook::OUTPUT | hook::INPUT
                    }
                })
        }
        Some(Target::Connmark(c)) => connmark_target::kernel_accepts(c),
        Some(t) if t.mangle_only() => table == TableName::Mangle,
        // xt_CT: the raw table only.
        Some(Target::Ct(_)) => table == TableName::Raw,
        Some(Target::Tcpmss(mss)) => {
            proto_is(IPPROTO_TCP)
                && tcpmss_target::matches_syn(rule)
                && (*mss != CLAMP_PMTU || only(hook::FORWARD | hook::OUTPUT | hook::POSTROUTING))
        }
        _ => true,
    };
    if !ok {
        return Err(invalid());
    }
    Ok(())
}

/// The kernel's `mark_source_chains`: a table where a chain reachable from a base chain can
/// reach itself again through jumps and gotos is refused with ELOOP; loops among chains no
/// base chain reaches are allowed.
fn find_loop(table: &Table) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    fn visit<'a>(
        table: &'a Table,
        chain: &'a str,
        marks: &mut HashMap<&'a str, Mark>,
    ) -> Result<()> {
        match marks.get(chain) {
            Some(Mark::OnPath) => return Err(plain("Too many levels of symbolic links")),
            Some(Mark::Done) => return Ok(()),
            None => {}
        }
        marks.insert(chain, Mark::OnPath);
        for (_, to) in table
            .chain(chain)
            .map(|c| c.rules.jumps())
            .unwrap_or_default()
        {
            visit(table, to, marks)?;
        }
        marks.insert(chain, Mark::Done);
        Ok(())
    }
    let mut marks = HashMap::new();
    for base in table.chains.iter().filter(|c| c.policy.is_some()) {
        visit(table, &base.name, &mut marks)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::apply;
    use crate::ruleset::print::tests::table;
    use crate::syntax::{parse_args, split_words};
    use crate::xtables::netdb::tests::debian;

    /// A change to chains stored unchanged is checked from their summaries as from their
    /// rules: a new hook reaching them, a rule past an unconditional verdict, a loop through
    /// them.
    #[test]
    fn stored_chains_are_checked_as_read_ones() {
        let db = debian();
        let start = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N a\n-N b\n\
                     -N macs\n-N open\n-A INPUT -j macs\n-A INPUT -j a\n\
                     -A macs -m mac --mac-source 02:00:00:00:00:01 -j DROP\n-A a -j b\n\
                     -A open -j ACCEPT\n-A open -m mac --mac-source 02:00:00:00:00:01 -j DROP\n";
        let cases = [
            ("-A OUTPUT -j macs", Some("Invalid argument")),
            ("-A FORWARD -j macs", None),
            ("-A OUTPUT -j open", None),
            ("-A b -j a", Some("Too many levels of symbolic links")),
            ("-A OUTPUT -j b", None),
        ];
        for (line, want) in cases {
            let command = parse_args("iptables", &split_words(line).unwrap())
                .unwrap()
                .command;
            for store in [false, true] {
                let mut t = table(&db, start);
                if store {
                    t = crate::dataplane::state::stored(&t, &Default::default());
                    assert!(t.chains.iter().all(|c| !c.rules.is_decoded()));
                }
                apply(&mut t, &command, &mut || 99).unwrap();
                let got = commit_checks(&t, TableName::Filter).map_err(|e| e.render("iptables"));
                match want {
                    None => assert!(got.is_ok(), "{line} (stored: {store}): {got:?}"),
                    Some(w) => assert!(
                        got.as_ref().is_err_and(|e| e.contains(w)),
                        "{line} (stored: {store}): {got:?}"
                    ),
                }
                if store {
                    let macs = t.chain("macs").unwrap();
                    assert_eq!(
                        macs.rules.is_decoded(),
                        want.is_some() && line.contains("macs")
                    );
                }
            }
        }
    }
}
