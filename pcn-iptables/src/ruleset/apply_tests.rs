//! Tests of `apply`: the commands' effect and iptables' messages.

use super::*;
use crate::model::TableName;
use crate::ruleset::commit_checks;
use crate::ruleset::print::{list_rules_with, tests::table};
use crate::syntax::{parse_args, split_words};
use crate::xtables::netdb::tests::debian;

const START: &str = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N USER\n\
                     -A INPUT -s 1.1.1.1/32 -j ACCEPT\n-A INPUT -s 2.2.2.2/32 -j DROP\n";

/// Runs iptables command lines in order; returns -S and each command's rendered error.
fn run(lines: &[&str]) -> (String, Vec<String>) {
    let db = debian();
    let mut t = table(&db, START);
    let mut next = 100;
    let mut errors = Vec::new();
    for line in lines {
        let command = parse_args("iptables", &split_words(line).unwrap())
            .unwrap()
            .command;
        let before = list_rules_with(&db, &t, None, None, None).unwrap();
        // A command, then the checks its commit makes, as `cli::run` does.
        let mut changed = t.clone();
        let result = apply(&mut changed, &command, &mut || {
            next += 1;
            next
        });
        if result.is_err() {
            assert_eq!(
                list_rules_with(&db, &changed, None, None, None).unwrap(),
                before,
                "{line} changed the table"
            );
        }
        match result.and_then(|()| commit_checks(&changed, TableName::Filter)) {
            Ok(()) => t = changed,
            Err(e) => errors.push(format!("{} {}", e.code, e.render("iptables"))),
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
        policy: crate::model::Policy::Drop,
    };
    let err = apply(&mut t, &policy, &mut || unreachable!()).unwrap_err();
    assert_eq!(
        err.render("iptables"),
        "iptables: Bad built-in chain name.\n"
    );
}

/// The chains of -S, in order.
fn chains(lines: &[&str]) -> (Vec<String>, Vec<String>) {
    let db = debian();
    let mut t = table(&db, START);
    let mut errors = Vec::new();
    for line in lines {
        let command = parse_args("iptables", &split_words(line).unwrap())
            .unwrap()
            .command;
        if let Err(e) = apply(&mut t, &command, &mut || 0) {
            errors.push(format!("{line}: {}", e.render("iptables")));
        }
    }
    let names = t.chains.iter().map(|c| c.name.clone()).collect();
    (names, errors)
}

#[test]
fn new_delete_and_rename_chains() {
    let (names, errors) = chains(&[
        "-N b",
        "-N B",
        "-N _x",
        "-N a",
        "-N a",
        "-N INPUT",
        "-A INPUT -j b",
        "-A a -j DROP",
        "-X b",
        "-X a",
        "-X nosuch",
        "-X INPUT",
        "-E b c",
        "-E c B",
        "-E c ACCEPT",
        "-E INPUT x",
        "-E nosuch x",
        "-E c abcdefghijklmnopqrstuvwxyzabcdef",
        "-X B",
    ]);
    // Base chains first, then user-defined ones in byte order; -E moves a chain.
    assert_eq!(
        names,
        ["INPUT", "FORWARD", "OUTPUT", "USER", "_x", "a", "c"]
    );
    assert_eq!(
        errors,
        [
            "-N a: iptables: Chain already exists.\n",
            "-N INPUT: iptables: Chain already exists.\n",
            "-X b: iptables: Too many links.\n",
            "-X a: iptables: Directory not empty.\n",
            "-X nosuch: iptables: No chain/target/match by that name.\n",
            "-X INPUT: iptables: Invalid argument. Run `dmesg' for more information.\n",
            "-E c B: iptables: File exists.\n",
            "-E c ACCEPT: iptables: File exists.\n",
            "-E INPUT x: iptables: No chain/target/match by that name.\n",
            "-E nosuch x: iptables: No chain/target/match by that name.\n",
            "-E c abcdefghijklmnopqrstuvwxyzabcdef: iptables: Invalid argument. Run `dmesg' for more information.\n",
        ]
    );
    let (rules, _) = run(&[
        "-N c",
        "-A INPUT -j c",
        "-A c -g USER",
        "-E c d",
        "-E USER u",
    ]);
    assert_eq!(
        rules,
        "-A INPUT -s 1.1.1.1/32 -j ACCEPT\n-A INPUT -s 2.2.2.2/32 -j DROP\n-A INPUT -j d\n-A d -g u\n"
    );
}

#[test]
fn delete_every_chain_or_none() {
    let (names, errors) = chains(&["-N a", "-N b", "-A a -j DROP", "-A INPUT -j b", "-X"]);
    assert_eq!(names, ["INPUT", "FORWARD", "OUTPUT", "USER", "a", "b"]);
    // The last failure is the one reported.
    assert_eq!(errors, ["-X: iptables: Too many links.\n"]);
    let (names, errors) = chains(&["-N a", "-X"]);
    assert_eq!(names, ["INPUT", "FORWARD", "OUTPUT"]);
    assert!(errors.is_empty());
}

#[test]
fn loops_reachable_from_a_base_chain_are_refused() {
    let loop_error = "1 iptables: Too many levels of symbolic links.\n";
    let (rules, errors) = run(&[
        "-N a",
        "-N b",
        "-A a -j b",
        "-A b -g a",
        "-A INPUT -j a",
        "-A USER -j USER",
        "-I OUTPUT -j USER",
        "-A OUTPUT -j b",
        "-A OUTPUT -j ACCEPT",
        "-R OUTPUT 1 -j a",
    ]);
    // a and b loop, unreached: allowed until a base chain reaches them.
    assert_eq!(errors, [loop_error, loop_error, loop_error, loop_error]);
    assert_eq!(
        rules,
        "-A INPUT -s 1.1.1.1/32 -j ACCEPT\n-A INPUT -s 2.2.2.2/32 -j DROP\n\
         -A OUTPUT -j ACCEPT\n-A USER -j USER\n-A a -j b\n-A b -g a\n"
    );
    // The same chain reached twice is no loop.
    let (_, errors) = run(&["-N a", "-A INPUT -j a", "-A INPUT -j USER", "-A USER -j a"]);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn missing_jumps_and_the_standard_target() {
    let no_chain = "1 iptables: No chain/target/match by that name.\n";
    let (rules, errors) = run(&[
        "-D INPUT -j USER",
        "-C INPUT -g USER",
        "-D INPUT -j DROP",
        "-A INPUT -j standard",
        "-I INPUT 9 -j standard",
        "-D INPUT -j standard",
        "-A INPUT -i +",
        "-D INPUT",
    ]);
    assert_eq!(
        errors,
        [
            no_chain,
            no_chain,
            "1 iptables: Bad rule (does a matching rule exist in that chain?).\n",
            no_chain,
            "1 iptables: Index of insertion too big.\n",
            no_chain,
        ]
    );
    // `-i +` is the rule without -i for -D.
    assert_eq!(
        rules,
        "-A INPUT -s 1.1.1.1/32 -j ACCEPT\n-A INPUT -s 2.2.2.2/32 -j DROP\n"
    );
}

#[test]
fn counters_flush_and_policy() {
    let db = debian();
    let mut t = table(&db, START);
    let mut slots = 10..;
    let mut alloc = || slots.next().unwrap();
    let command = |line: &str| {
        parse_args("iptables", &split_words(line).unwrap())
            .unwrap()
            .command
    };
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
        Some(crate::model::Policy::Drop)
    );
    apply(&mut t, &command("-F INPUT"), &mut alloc).unwrap();
    assert!(t.chain("INPUT").unwrap().rules.is_empty());
    apply(&mut t, &command("-C OUTPUT -j DROP"), &mut alloc).unwrap_err();
    apply(&mut t, &command("-A OUTPUT -j DROP"), &mut alloc).unwrap();
    apply(&mut t, &command("-C OUTPUT -j DROP"), &mut alloc).unwrap();
    apply(&mut t, &command("-F"), &mut alloc).unwrap();
    assert!(t.chains.iter().all(|c| c.rules.is_empty()));
}

/// Runs `-t nat` command lines on an empty nat table, each committed as `cli::run_nat` does;
/// returns which ones the kernel's checks refuse (by index).
fn nat_refusals(lines: &[&str]) -> Vec<usize> {
    let mut t = Table::builtin(TableName::Nat);
    let mut refused = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let words = split_words(&format!("-t nat {line}")).unwrap();
        let command = parse_args("iptables", &words).unwrap().command;
        let mut changed = t.clone();
        let result = apply(&mut changed, &command, &mut || 100 + i as u32)
            .and_then(|()| commit_checks(&changed, TableName::Nat));
        match result {
            Ok(()) => t = changed,
            Err(e) => {
                assert_eq!(
                    e.render("iptables"),
                    "iptables: Invalid argument. Run `dmesg' for more information.\n",
                    "{line}"
                );
                refused.push(i);
            }
        }
    }
    refused
}

#[test]
fn nat_targets_only_at_their_hooks() {
    let refused = nat_refusals(&[
        "-A PREROUTING -j SNAT --to-source 1.2.3.4",
        "-A INPUT -j SNAT --to-source 1.2.3.4",
        "-A OUTPUT -j MASQUERADE",
        "-A POSTROUTING -j MASQUERADE",
        "-A POSTROUTING -j DNAT --to-destination 1.2.3.4",
        "-A OUTPUT -j DNAT --to-destination 1.2.3.4",
        "-A INPUT -j REDIRECT",
        "-A PREROUTING -j REDIRECT",
        "-A INPUT -j NETMAP --to 10.0.0.0/8",
        "-A INPUT -j REJECT",
        "-A PREROUTING -m mac --mac-source 00:11:22:33:44:55",
        "-A POSTROUTING -m mac --mac-source 00:11:22:33:44:55",
    ]);
    assert_eq!(refused, [0, 2, 4, 6, 9, 11]);
}

#[test]
fn nat_hooks_follow_jumps_and_stop_at_unconditional_verdicts() {
    let refused = nat_refusals(&[
        // A user chain no base chain reaches is checked for no hook.
        "-N u",
        "-A u -j SNAT --to-source 1.2.3.4",
        "-A u -j DNAT --to-destination 1.2.3.4",
        "-A PREROUTING -j u",
        "-A POSTROUTING -g u",
        "-F u",
        "-A u -j MASQUERADE",
        "-A POSTROUTING -j u",
        "-A OUTPUT -p tcp -j u",
        // Through a second chain.
        "-N v",
        "-A v -j u",
        "-A PREROUTING -j v",
        // The kernel's walk stops at an unconditional ACCEPT or RETURN: what follows it is
        // checked for no hook; a conditional one does not stop it.
        "-A OUTPUT -j ACCEPT",
        "-A OUTPUT -j MASQUERADE",
        "-N w",
        "-A w -j RETURN",
        "-A w -j MASQUERADE",
        "-A PREROUTING -j w",
        "-N x",
        "-A x -p tcp -j RETURN",
        "-A x -j MASQUERADE",
        "-A PREROUTING -j x",
    ]);
    assert_eq!(refused, [3, 4, 8, 11, 21]);
}

#[test]
fn nat_targets_are_refused_outside_nat() {
    let (_, errors) = run(&[
        "-A INPUT -j SNAT --to-source 1.2.3.4",
        "-A USER -j MASQUERADE",
    ]);
    let invalid = "1 iptables: Invalid argument. Run `dmesg' for more information.\n";
    assert_eq!(errors, [invalid, invalid]);
}
