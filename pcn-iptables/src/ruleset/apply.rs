//! The commands' effect on the ruleset, with the checks and messages of iptables-legacy 1.8.9:
//! the target lookup of `do_command4`, libiptc's chain and index checks, and the kernel's
//! refusals at commit (loops, `checkentry`) that surface as errno messages.

use super::names::no_chain;
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::model::{Chain, Command, MAX_CHAIN_LABEL, Rule, Table, Target};

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
pub(super) const STANDARD: &str = "standard";

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
                rules: Default::default(),
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
    // Only the chains that jump there are read (and stored anew).
    let jumpers = (table.chains.iter_mut()).filter(|c| c.rules.jumps().iter().any(|j| j.1 == name));
    for rule in jumpers.flat_map(|c| &mut c.rules) {
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
                .chain(c.rules.counters())
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

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
