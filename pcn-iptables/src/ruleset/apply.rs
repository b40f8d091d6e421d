//! The commands' effect on the ruleset, with the checks and messages of iptables-legacy 1.8.9:
//! the target lookup of `do_command4`, libiptc's chain and index checks, and the kernel's
//! `checkentry` refusals that surface as "Invalid argument".

use super::model::{Match, Rule, Table, Target};
use super::no_chain;
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::syntax::Command;

fn plain(message: &str) -> Error {
    Error::plain(OTHER_PROBLEM, message)
}

fn invalid() -> Error {
    plain("Invalid argument. Run `dmesg' for more information")
}

fn bad_rule() -> Error {
    plain("Bad rule (does a matching rule exist in that chain?)")
}

/// Applies `command`. New rules get counter slots from `alloc`, called only once every check
/// has passed: on error the table is unchanged. Listing and -Z only check their chain (the
/// caller prints and zeroes); -C checks every rule.
pub fn apply(table: &mut Table, command: &Command, alloc: &mut dyn FnMut() -> u32) -> Result<()> {
    match command {
        Command::Append { chain, rules } => {
            resolve_targets(table, rules)?;
            table.chain(chain).ok_or_else(no_chain)?;
            map_targets(table, rules)?;
            kernel_checks(rules)?;
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
            kernel_checks(rules)?;
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
            let mut remaining = table.chain(chain).ok_or_else(bad_rule)?.rules.clone();
            map_targets(table, rules)?;
            for rule in rules {
                let at = remaining
                    .iter()
                    .position(|r| r.same_spec(rule))
                    .ok_or_else(bad_rule)?;
                remaining.remove(at);
            }
            table.chain_mut(chain).ok_or_else(bad_rule)?.rules = remaining;
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
            kernel_checks(rules)?;
            let counter = alloc();
            table.chain_mut(chain).ok_or_else(no_chain)?.rules[index - 1] = Rule {
                counter,
                ..rule.clone()
            };
        }
        Command::Check { chain, rules } => {
            for rule in rules {
                check(table, chain, rule)?;
            }
        }
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
    }
    Ok(())
}

/// `-C`: whether `rule` is in `chain`.
pub fn check(table: &Table, chain: &str, rule: &Rule) -> Result<()> {
    let rules = std::slice::from_ref(rule);
    resolve_targets(table, rules)?;
    let chain = table.chain(chain).ok_or_else(bad_rule)?;
    map_targets(table, rules)?;
    chain
        .rules
        .iter()
        .any(|r| r.same_spec(rule))
        .then_some(())
        .ok_or_else(bad_rule)
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
            Some(Target::Jump(name)) if table.chain(name).is_none() => {
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

/// What the kernel refuses when the new table is committed: a port match on another protocol
/// than the rule's (`xt_check_match`).
fn kernel_checks(rules: &[Rule]) -> Result<()> {
    for rule in rules {
        for Match::Ports { proto, .. } in &rule.matches {
            if rule
                .proto
                .as_ref()
                .is_none_or(|p| p.negated || p.value != *proto)
            {
                return Err(invalid());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::print::{list_rules_with, tests::table};
    use crate::syntax::netdb::tests::debian;
    use crate::syntax::{parse_args, split_words};

    const START: &str = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N USER\n\
                         -A INPUT -s 1.1.1.1/32 -j ACCEPT\n-A INPUT -s 2.2.2.2/32 -j DROP\n";

    /// Runs iptables command lines in order; returns -S and each command's rendered error.
    fn run(lines: &[&str]) -> (String, Vec<String>) {
        let db = debian();
        let mut t = table(&db, START);
        let mut next = 100;
        let mut errors = Vec::new();
        for line in lines {
            let command = parse_args(&split_words(line).unwrap()).unwrap().command;
            let before = list_rules_with(&db, &t, None, None, None).unwrap();
            if let Err(e) = apply(&mut t, &command, &mut || {
                next += 1;
                next
            }) {
                errors.push(format!("{} {}", e.code, e.render("iptables")));
                assert_eq!(
                    list_rules_with(&db, &t, None, None, None).unwrap(),
                    before,
                    "{line} changed the table"
                );
            }
        }
        let rules = list_rules_with(&db, &t, None, None, None).unwrap();
        (
            rules
                .lines()
                .filter(|l| l.starts_with("-A"))
                .map(|l| format!("{l}\n"))
                .collect(),
            errors,
        )
    }

    #[test]
    fn insert_append_replace_delete() {
        let (rules, errors) = run(&[
            "-I INPUT 2 -s 3.3.3.3,4.4.4.4 -d 5.5.5.5,6.6.6.6 -j RETURN",
            "-I INPUT -p tcp --dport 80",
            "-I INPUT 8 -p udp",
            "-I INPUT 10 -p udp",
            "-A INPUT -j USER",
            "-R INPUT 2 -p udp --sport 53 -j ACCEPT",
            "-R INPUT 11 -j ACCEPT",
            "-D INPUT 11",
            "-D INPUT -s 4.4.4.4 -d 5.5.5.5,6.6.6.6 -j RETURN",
            "-D INPUT 1",
        ]);
        // The expanded rules of one -I land in reverse order (iptables-legacy does the same).
        assert_eq!(
            rules,
            "-A INPUT -p udp -m udp --sport 53 -j ACCEPT\n\
             -A INPUT -s 3.3.3.3/32 -d 6.6.6.6/32 -j RETURN\n\
             -A INPUT -s 3.3.3.3/32 -d 5.5.5.5/32 -j RETURN\n\
             -A INPUT -s 2.2.2.2/32 -j DROP\n\
             -A INPUT -p udp\n\
             -A INPUT -j USER\n"
        );
        assert_eq!(
            errors,
            [
                "1 iptables: Index of insertion too big.\n",
                "1 iptables: Index of replacement too big.\n",
                "1 iptables: Index of deletion too big.\n",
            ]
        );
    }

    #[test]
    fn delete_takes_the_first_match_and_all_or_nothing() {
        let (rules, errors) = run(&[
            "-A INPUT -s 2.2.2.2 -j ACCEPT",
            "-A INPUT -s 1.1.1.1 -j ACCEPT",
            "-D INPUT -s 1.1.1.1,9.9.9.9 -j ACCEPT",
            "-D INPUT -s 1.1.1.1,2.2.2.2 -j ACCEPT",
        ]);
        assert_eq!(
            rules,
            "-A INPUT -s 2.2.2.2/32 -j DROP\n-A INPUT -s 1.1.1.1/32 -j ACCEPT\n"
        );
        assert_eq!(
            errors,
            ["1 iptables: Bad rule (does a matching rule exist in that chain?).\n"]
        );
        let (_, errors) = run(&[
            "-D INPUT -s 2.2.2.2 -j DROP",
            "-D INPUT -s 2.2.2.2 -j ACCEPT",
        ]);
        assert_eq!(
            errors,
            ["1 iptables: Bad rule (does a matching rule exist in that chain?).\n"]
        );
    }

    #[test]
    fn iptables_errors() {
        let (_, errors) = run(&[
            "-A FOO -j ACCEPT",
            "-A FOO -j BAR",
            "-A INPUT -g FOO",
            "-D FOO -j DROP",
            "-C FOO -j DROP",
            "-C INPUT -j DROP",
            "-D FOO 1",
            "-R FOO 1 -j DROP",
            "-I FOO 1 -j DROP",
            "-F FOO",
            "-Z FOO",
            "-Z INPUT 3",
            "-L FOO",
            "-S FOO",
            "-A INPUT -p udp -m tcp --dport 22",
            "-A INPUT ! -p tcp -m tcp",
            "-A INPUT -m tcp",
            "-I INPUT -j OUTPUT",
            "-A INPUT -g FORWARD",
            "-C INPUT -j OUTPUT",
            "-D INPUT -g FORWARD",
            "-D FOO -g FORWARD",
        ]);
        let no_chain = "1 iptables: No chain/target/match by that name.\n";
        let bad_rule = "1 iptables: Bad rule (does a matching rule exist in that chain?).\n";
        let invalid = "1 iptables: Invalid argument. Run `dmesg' for more information.\n";
        let try_help = "Try `iptables -h' or 'iptables --help' for more information.\n";
        assert_eq!(
            errors,
            [
                no_chain.to_string(),
                format!(
                    "2 iptables v1.8.9 (legacy): Couldn't load target `BAR':No such file or directory\n\n{try_help}"
                ),
                format!("2 iptables v1.8.9 (legacy): goto 'FOO' is not a chain\n{try_help}"),
                bad_rule.into(),
                bad_rule.into(),
                bad_rule.into(),
                no_chain.into(),
                no_chain.into(),
                no_chain.into(),
                no_chain.into(),
                no_chain.into(),
                "1 iptables: Index of counter too big.\n".into(),
                no_chain.into(),
                no_chain.into(),
                invalid.into(),
                invalid.into(),
                invalid.into(),
                invalid.into(),
                invalid.into(),
                invalid.into(),
                invalid.into(),
                bad_rule.into(),
            ]
        );
        let mut t = table(&debian(), START);
        let policy = Command::Policy {
            chain: "USER".into(),
            policy: crate::ruleset::Policy::Drop,
        };
        let err = apply(&mut t, &policy, &mut || unreachable!()).unwrap_err();
        assert_eq!(
            err.render("iptables"),
            "iptables: Bad built-in chain name.\n"
        );
    }

    #[test]
    fn counters_flush_and_policy() {
        let db = debian();
        let mut t = table(&db, START);
        let mut slots = 10..;
        let mut alloc = || slots.next().unwrap();
        let command = |line: &str| parse_args(&split_words(line).unwrap()).unwrap().command;
        apply(
            &mut t,
            &command("-A INPUT -s 1.1.1.1,3.3.3.3 -j DROP"),
            &mut alloc,
        )
        .unwrap();
        apply(&mut t, &command("-R INPUT 1 -j DROP"), &mut alloc).unwrap();
        let input = |t: &Table| {
            t.chain("INPUT")
                .unwrap()
                .rules
                .iter()
                .map(|r| r.counter)
                .collect::<Vec<_>>()
        };
        assert_eq!(input(&t), [12, 4, 10, 11]);
        assert_eq!(
            zero_slots(&t, Some("INPUT"), None).unwrap(),
            [0, 12, 4, 10, 11]
        );
        assert_eq!(zero_slots(&t, Some("INPUT"), Some(2)).unwrap(), [4]);
        assert_eq!(
            zero_slots(&t, None, None).unwrap(),
            [0, 12, 4, 10, 11, 1, 2]
        );
        // A failing command allocates nothing.
        assert!(apply(&mut t, &command("-A INPUT -j NOWHERE"), &mut alloc).is_err());
        assert_eq!(alloc(), 13);
        apply(&mut t, &command("-P FORWARD DROP"), &mut alloc).unwrap();
        assert_eq!(
            t.chain("FORWARD").unwrap().policy,
            Some(crate::ruleset::Policy::Drop)
        );
        apply(&mut t, &command("-F INPUT"), &mut alloc).unwrap();
        assert!(t.chain("INPUT").unwrap().rules.is_empty());
        apply(&mut t, &command("-C OUTPUT -j DROP"), &mut alloc).unwrap_err();
        apply(&mut t, &command("-A OUTPUT -j DROP"), &mut alloc).unwrap();
        apply(&mut t, &command("-C OUTPUT -j DROP"), &mut alloc).unwrap();
        apply(&mut t, &command("-F"), &mut alloc).unwrap();
        assert!(t.chains.iter().all(|c| c.rules.is_empty()));
    }
}
