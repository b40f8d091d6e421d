//! The commands' effect on the ruleset, with the checks and messages of iptables-legacy 1.8.9:
//! the target lookup of `do_command4`, libiptc's chain and index checks, and the kernel's
//! refusals at commit (loops, `checkentry`) that surface as errno messages.

use std::collections::{HashMap, HashSet};

use pcn_iptables_common::{reject, rewrite::CLAMP_PMTU};

use super::names::no_chain;
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::ext::{connmark_target, ecn, hashlimit, limit, owner, recent, tcpmss_target};
use crate::model::{
    AddrtypeIface, Chain, Command, IPPROTO_AH, IPPROTO_ESP, IPPROTO_ICMP, IPPROTO_TCP,
    MAX_CHAIN_LABEL, Match, NatKind, Rule, Table, TableName, Target,
};

fn plain(message: &str) -> Error {
    Error::plain(OTHER_PROBLEM, message)
}

fn invalid() -> Error {
    plain("Invalid argument. Run `dmesg' for more information")
}

fn bad_rule() -> Error {
    plain("Bad rule (does a matching rule exist in that chain?)")
}

/// What `-D` and `-C` say when no rule matches `rule`: libiptc reports a missing rule with a
/// jump, or with a target extension, as a missing chain.
fn missing(rule: &Rule) -> Error {
    match &rule.target {
        None | Some(Target::Accept | Target::Drop | Target::Return) => bad_rule(),
        Some(_) => no_chain(),
    }
}

/// `-j standard` finds iptables' standard target under its own name, which libiptc takes for an
/// extension's: the kernel then has no target by that name.
const STANDARD: &str = "standard";

/// The names libiptc never lets a chain take, besides those of existing chains.
const VERDICTS: [&str; 4] = ["ACCEPT", "DROP", "QUEUE", "RETURN"];

/// Applies `command`. New rules get counter slots from `alloc`, called only once every check
/// has passed: on error the table is unchanged. Listing and -Z only check their chain (the
/// caller prints and zeroes); -C checks every rule.
pub fn apply(table: &mut Table, command: &Command, alloc: &mut dyn FnMut() -> u32) -> Result<()> {
    match command {
        Command::Append { .. }
        | Command::Insert { .. }
        | Command::Delete { .. }
        | Command::DeleteNum { .. }
        | Command::Replace { .. }
        | Command::Check { .. } => apply_rules(table, command, alloc),
        _ => apply_chains(table, command),
    }
}

/// The commands on rules: `-A`, `-I`, `-D`, `-R`, `-C`.
fn apply_rules(table: &mut Table, command: &Command, alloc: &mut dyn FnMut() -> u32) -> Result<()> {
    if let Some(command) = chains_over_extensions(table, command) {
        return apply_rules(table, &command, alloc);
    }
    match command {
        Command::Append { chain, rules } => {
            resolve_targets(table, rules)?;
            table.chain(chain).ok_or_else(no_chain)?;
            map_targets(table, rules)?;
            let rules: Vec<Rule> = rules
                .iter()
                .map(|r| Rule {
                    counter: alloc(),
                    ..r.clone()
                })
                .collect();
            table
                .chain_mut(chain)
                .ok_or_else(no_chain)?
                .rules
                .extend(rules);
        }
        Command::Insert {
            chain,
            index,
            rules,
        } => {
            resolve_targets(table, rules)?;
            let len = table.chain(chain).ok_or_else(no_chain)?.rules.len();
            if *index > len + 1 {
                return Err(plain("Index of insertion too big"));
            }
            map_targets(table, rules)?;
            let at = index - 1;
            let target = &mut table.chain_mut(chain).ok_or_else(no_chain)?.rules;
            // Each address combination is inserted at the same place, so they end up reversed.
            for rule in rules {
                target.insert(
                    at,
                    Rule {
                        counter: alloc(),
                        ..rule.clone()
                    },
                );
            }
        }
        Command::Delete { chain, rules } => {
            resolve_targets(table, rules)?;
            let existing = &table.chain(chain).ok_or_else(bad_rule)?.rules;
            map_targets(table, rules)?;
            // Each rule takes the first match not taken yet (no copy of a long chain).
            let mut taken = Vec::with_capacity(rules.len());
            for rule in rules {
                let at = (0..existing.len())
                    .find(|i| !taken.contains(i) && existing[*i].same_spec(rule))
                    .ok_or_else(|| missing(rule))?;
                taken.push(at);
            }
            let rules = &mut table.chain_mut(chain).ok_or_else(bad_rule)?.rules;
            let mut i = 0;
            rules.retain(|_| {
                i += 1;
                !taken.contains(&(i - 1))
            });
        }
        Command::DeleteNum { chain, index } => {
            let rules = &mut table.chain_mut(chain).ok_or_else(no_chain)?.rules;
            if *index > rules.len() {
                return Err(plain("Index of deletion too big"));
            }
            rules.remove(index - 1);
        }
        Command::Replace { chain, index, rule } => {
            let rules = std::slice::from_ref(rule);
            resolve_targets(table, rules)?;
            if *index > table.chain(chain).ok_or_else(no_chain)?.rules.len() {
                return Err(plain("Index of replacement too big"));
            }
            map_targets(table, rules)?;
            let counter = alloc();
            table.chain_mut(chain).ok_or_else(no_chain)?.rules[index - 1] = Rule {
                counter,
                ..rule.clone()
            };
        }
        Command::Check { chain, rules } => {
            for rule in rules {
                check_rule(table, chain, rule)?;
            }
        }
        _ => unreachable!("apply gives rule commands only"),
    }
    Ok(())
}

/// The commands on chains and the table: `-F`, `-Z`, `-P`, `-N`, `-X`, `-E` (and those that
/// only look: `-L`, `-S`, `-h`, `-V`).
fn apply_chains(table: &mut Table, command: &Command) -> Result<()> {
    match command {
        Command::List { chain, .. }
        | Command::ListRules { chain, .. }
        | Command::Flush { chain } => {
            let chains: Vec<_> = match chain {
                Some(name) => vec![table.chain_mut(name).ok_or_else(no_chain)?],
                None => table.chains.iter_mut().collect(),
            };
            if let Command::Flush { .. } = command {
                chains.into_iter().for_each(|c| c.rules.clear());
            }
        }
        Command::Zero { chain, rulenum } => {
            zero_slots(table, chain.as_deref(), *rulenum)?;
        }
        Command::Policy { chain, policy } => {
            let chain = table.chain_mut(chain).filter(|c| c.policy.is_some());
            chain
                .ok_or_else(|| plain("Bad built-in chain name"))?
                .policy = Some(*policy);
        }
        Command::NewChain { chain } => {
            if table.chain(chain).is_some() || VERDICTS.contains(&chain.as_str()) {
                return Err(plain("Chain already exists"));
            }
            table.add_chain(Chain {
                name: chain.clone(),
                policy: None,
                policy_counter: 0,
                rules: Vec::new(),
            });
        }
        Command::DeleteChain { chain: Some(chain) } => delete_chain(table, chain)?,
        Command::DeleteChain { chain: None } => {
            // iptables tries every user-defined chain and commits only if all went: nothing
            // changes otherwise, and the last failure is the one reported.
            let mut next = table.clone();
            let mut failure = None;
            for chain in table.chains.iter().filter(|c| c.policy.is_none()) {
                if let Err(e) = delete_chain(&mut next, &chain.name) {
                    failure = Some(e);
                }
            }
            match failure {
                Some(e) => return Err(e),
                None => *table = next,
            }
        }
        Command::RenameChain { chain, new_name } => rename_chain(table, chain, new_name)?,
        Command::Help { .. } | Command::Version { .. } => {}
        _ => unreachable!("apply gives the other commands here"),
    }
    Ok(())
}

/// libiptc's `iptc_delete_chain`.
fn delete_chain(table: &mut Table, name: &str) -> Result<()> {
    let chain = table.chain(name).ok_or_else(no_chain)?;
    if chain.policy.is_some() {
        return Err(invalid());
    }
    if table.references(name) > 0 {
        return Err(plain("Too many links"));
    }
    if !chain.rules.is_empty() {
        return Err(plain("Directory not empty"));
    }
    table.chains.retain(|c| c.name != name);
    Ok(())
}

/// libiptc's `iptc_rename_chain`: jumps follow the chain, which moves to its new place in the
/// order.
fn rename_chain(table: &mut Table, name: &str, new_name: &str) -> Result<()> {
    if table.chain(new_name).is_some() || VERDICTS.contains(&new_name) {
        return Err(plain("File exists"));
    }
    let at = table
        .chains
        .iter()
        .position(|c| c.name == name && c.policy.is_none())
        .ok_or_else(no_chain)?;
    if new_name.len() + 1 > MAX_CHAIN_LABEL {
        return Err(invalid());
    }
    let mut chain = table.chains.remove(at);
    chain.name = new_name.to_string();
    for rule in table.chains.iter_mut().flat_map(|c| &mut c.rules) {
        if let Some(Target::Jump(to) | Target::Goto(to)) = &mut rule.target
            && to == name
        {
            *to = new_name.to_string();
        }
    }
    table.add_chain(chain);
    Ok(())
}

/// `-C`: whether the rules of `command` are in its chain.
pub fn check(table: &Table, command: &Command) -> Result<()> {
    if let Some(command) = chains_over_extensions(table, command) {
        return check(table, &command);
    }
    let Command::Check { chain, rules } = command else {
        return Ok(());
    };
    rules
        .iter()
        .try_for_each(|rule| check_rule(table, chain, rule))
}

fn check_rule(table: &Table, chain: &str, rule: &Rule) -> Result<()> {
    let rules = std::slice::from_ref(rule);
    resolve_targets(table, rules)?;
    let chain = table.chain(chain).ok_or_else(bad_rule)?;
    map_targets(table, rules)?;
    chain
        .rules
        .iter()
        .any(|r| r.same_spec(rule))
        .then_some(())
        .ok_or_else(|| missing(rule))
}

/// The counter slots `-Z [chain [rulenum]]` zeroes: a chain's rules and its policy, or one rule.
pub fn zero_slots(table: &Table, chain: Option<&str>, rulenum: Option<usize>) -> Result<Vec<u32>> {
    let chains: Vec<_> = match chain {
        Some(name) => vec![table.chain(name).ok_or_else(no_chain)?],
        None => table.chains.iter().collect(),
    };
    if let (Some(num), [chain]) = (rulenum, chains.as_slice()) {
        let rule = num.checked_sub(1).and_then(|i| chain.rules.get(i));
        return Ok(vec![
            rule.ok_or_else(|| plain("Index of counter too big"))?
                .counter,
        ]);
    }
    Ok(chains
        .iter()
        .flat_map(|c| {
            c.policy
                .map(|_| c.policy_counter)
                .into_iter()
                .chain(c.rules.iter().map(|r| r.counter))
        })
        .collect())
}

/// iptables resolves `-j NAME` to a chain before anything else (before `-v` echoes the rules,
/// too); a name that is neither a verdict nor a chain is taken for a target extension it cannot
/// load.
pub(crate) fn resolve_targets(table: &Table, rules: &[Rule]) -> Result<()> {
    for rule in rules {
        match &rule.target {
            Some(Target::Jump(name)) if table.chain(name).is_none() && name != STANDARD => {
                return Err(Error::parameter(format!(
                    "Couldn't load target `{name}':No such file or directory\n"
                )));
            }
            Some(Target::Goto(name)) if table.chain(name).is_none() => {
                return Err(Error::parameter(format!("goto '{name}' is not a chain")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// iptables' answer to a target extension that has the name of a chain of the table (one a
/// restore file made): a jump to the chain, with a warning. `None`: no rule of `command` has
/// such a target.
fn chains_over_extensions(table: &Table, command: &Command) -> Option<Command> {
    let chain_named = |r: &Rule| {
        let t = r.target.as_ref()?;
        crate::ext::of_target(t)?;
        let name = super::names::target_name(t);
        table.chain(name).map(|_| name.to_string())
    };
    let first = match command {
        Command::Append { rules, .. }
        | Command::Insert { rules, .. }
        | Command::Delete { rules, .. }
        | Command::Check { rules, .. } => rules.first(),
        Command::Replace { rule, .. } => Some(rule),
        _ => None,
    };
    // One command line, one target: every rule of it has the same.
    let name = first.and_then(chain_named)?;
    eprintln!("Warning: using chain {name}, not extension");
    let mut command = command.clone();
    let jump = |r: &mut Rule| r.target = Some(Target::Jump(name.clone()));
    match &mut command {
        Command::Append { rules, .. }
        | Command::Insert { rules, .. }
        | Command::Delete { rules, .. }
        | Command::Check { rules, .. } => rules.iter_mut().for_each(jump),
        Command::Replace { rule, .. } => jump(rule),
        _ => {}
    }
    Some(command)
}

/// libiptc refuses a jump to a built-in chain when it maps the rule's target, for every rule
/// command.
fn map_targets(table: &Table, rules: &[Rule]) -> Result<()> {
    for rule in rules {
        if let Some(Target::Jump(name) | Target::Goto(name)) = &rule.target
            && table.chain(name).is_some_and(|c| c.policy.is_some())
        {
            return Err(invalid());
        }
    }
    Ok(())
}

/// The checks the kernel makes when a table is committed (libiptc's errors come from
/// there): a loop reachable from a base chain, a match or target in a table or at a hook it
/// does not take, a port match whose protocol the rule does not have, a jump to `standard`.
/// Made once per commit rather than per rule, as iptables-restore does at COMMIT.
pub fn commit_checks(table: &Table, name: TableName) -> Result<()> {
    find_loop(table)?;
    let hooks = hook_masks(table);
    for (chain, masks) in table.chains.iter().zip(&hooks) {
        for (rule, &mask) in chain.rules.iter().zip(masks) {
            check_entry(rule, name, mask)?;
        }
    }
    let rules = || table.chains.iter().flat_map(|c| &c.rules);
    if rules().any(|r| r.target == Some(Target::Jump(STANDARD.into()))) {
        return Err(no_chain());
    }
    Ok(())
}

/// Netfilter's hooks, as the bits of a rule's hook mask (the kernel's `comefrom`).
mod hook {
    pub const PREROUTING: u8 = 1 << 0;
    pub const INPUT: u8 = 1 << 1;
    pub const FORWARD: u8 = 1 << 2;
    pub const OUTPUT: u8 = 1 << 3;
    pub const POSTROUTING: u8 = 1 << 4;

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

/// The hooks each rule can be reached from (by chain, in table order), as the kernel's
/// `mark_source_chains` marks them: its walk of a chain stops at an unconditional ACCEPT,
/// DROP or RETURN, so the rules after one are checked for no hook at all.
fn hook_masks(table: &Table) -> Vec<Vec<u8>> {
    let index: HashMap<&str, usize> = table
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut masks: Vec<Vec<u8>> = table
        .chains
        .iter()
        .map(|c| vec![0; c.rules.len()])
        .collect();
    for (base, chain) in table.chains.iter().enumerate() {
        if chain.policy.is_none() {
            continue;
        }
        let bit = hook::of(&chain.name);
        let mut seen = HashSet::new();
        let mut todo = vec![base];
        while let Some(at) = todo.pop() {
            if !seen.insert(at) {
                continue;
            }
            for (i, rule) in table.chains[at].rules.iter().enumerate() {
                masks[at][i] |= bit;
                if let Some(to) = rule.target.as_ref().and_then(Target::chain) {
                    todo.extend(index.get(to));
                }
                if ends_walk(rule) {
                    break;
                }
            }
        }
    }
    masks
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
        let rules = table.chain(chain).map_or(&[][..], |c| c.rules.as_slice());
        for rule in rules {
            if let Some(to) = rule.target.as_ref().and_then(Target::chain) {
                visit(table, to, marks)?;
            }
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
#[path = "apply_tests.rs"]
mod tests;
