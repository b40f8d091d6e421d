//! `-S`: the ruleset as iptables commands, byte for byte as iptables-legacy 1.8.9 prints them
//! (`print_rule4`, `save_ipv4_addr`, `save_rule_details`, the tcp/udp `save` functions).

use std::fmt::Write as _;

use super::names::{no_chain, target_name};
use crate::error::Result;
use crate::ext;
use crate::model::{Chain, Interface, Negatable, Policy, Rule, Table, Target};
use crate::xtables::netdb::NameDb;
use crate::xtables::value::protocol_name;

/// One rule as `-A chain ...`, without counters, for the stored state:
/// [`crate::syntax::parse_rule_line`] reads it back into the same rule, `-i +` included, which
/// `-S` leaves out but `-L` shows.
pub fn rule_spec(chain: &str, rule: &Rule) -> String {
    write_spec(NameDb::system(), chain, rule, None, true)
}

/// `-S [chain [rulenum]]`; with `counters` (`-v`) each policy and rule shows `-c pkts bytes`.
pub fn list_rules(
    table: &Table,
    chain: Option<&str>,
    rulenum: Option<usize>,
    counters: Option<&dyn Fn(u32) -> (u64, u64)>,
) -> Result<String> {
    list_rules_with(NameDb::system(), table, chain, rulenum, counters)
}

pub(crate) fn list_rules_with(
    db: &NameDb,
    table: &Table,
    chain: Option<&str>,
    rulenum: Option<usize>,
    counters: Option<&dyn Fn(u32) -> (u64, u64)>,
) -> Result<String> {
    let chains: Vec<&Chain> = match chain {
        Some(name) => vec![table.chain(name).ok_or_else(no_chain)?],
        None => table.chains.iter().collect(),
    };
    let mut out = String::new();
    // Chains first, so that a restore creates them before rules jump to them.
    if rulenum.is_none() {
        for chain in &chains {
            match chain.policy {
                Some(policy) => {
                    let policy = match policy {
                        Policy::Accept => "ACCEPT",
                        Policy::Drop => "DROP",
                    };
                    let _ = write!(out, "-P {} {policy}", chain.name);
                    if let Some(counters) = counters {
                        let (packets, bytes) = counters(chain.policy_counter);
                        let _ = write!(out, " -c {packets} {bytes}");
                    }
                    out.push('\n');
                }
                None => {
                    let _ = writeln!(out, "-N {}", chain.name);
                }
            }
        }
    }
    for chain in chains {
        for (num, rule) in (1..).zip(&chain.rules) {
            if rulenum.is_none_or(|n| n == num) {
                out += &spec(db, &chain.name, rule, counters.map(|c| c(rule.counter)));
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// One rule as `-S` prints it.
pub(crate) fn spec(db: &NameDb, chain: &str, rule: &Rule, counters: Option<(u64, u64)>) -> String {
    write_spec(db, chain, rule, counters, false)
}

fn write_spec(
    db: &NameDb,
    chain: &str,
    rule: &Rule,
    counters: Option<(u64, u64)>,
    any_interface: bool,
) -> String {
    let mut out = format!("-A {chain}");
    for (letter, addr) in [('s', &rule.src), ('d', &rule.dst)] {
        if let Some(Negatable { value, negated }) = addr {
            let _ = write!(
                out,
                "{} -{letter} {}/{}",
                bang(*negated),
                value.addr,
                value.mask_text()
            );
        }
    }
    for (letter, iface) in [('i', &rule.in_iface), ('o', &rule.out_iface)] {
        if let Some(Negatable {
            value: Interface { name, wildcard },
            negated,
        }) = iface
            .as_ref()
            .filter(|i| any_interface || !i.value.is_any())
        {
            let _ = write!(
                out,
                "{} -{letter} {name}{}",
                bang(*negated),
                if *wildcard { "+" } else { "" }
            );
        }
    }
    if let Some(Negatable { value, negated }) = &rule.proto {
        out += bang(*negated);
        match protocol_name(db, *value, false) {
            Some(name) => {
                let _ = write!(out, " -p {name}");
            }
            None => {
                let _ = write!(out, " -p {value}");
            }
        }
    }
    if let Some(Negatable { negated, .. }) = &rule.fragment {
        let _ = write!(out, "{} -f", bang(*negated));
    }
    for m in &rule.matches {
        let _ = write!(out, " -m {}{}", ext::match_name(m), ext::save(m));
    }
    if let Some((packets, bytes)) = counters {
        let _ = write!(out, " -c {packets} {bytes}");
    }
    if let Some(target) = &rule.target {
        let flag = if matches!(target, Target::Goto(_)) {
            'g'
        } else {
            'j'
        };
        let _ = write!(
            out,
            " -{flag} {}{}",
            target_name(target),
            ext::target_save(target)
        );
    }
    out
}

fn bang(negated: bool) -> &'static str {
    if negated { " !" } else { "" }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::syntax::{parse_rule_line_with, split_words};
    use crate::xtables::netdb::tests::debian;

    /// Golden text as captured: each line ends with `$`, so trailing blanks stay visible.
    pub(crate) fn golden(text: &str) -> String {
        text.replace("$\n", "\n")
    }

    /// A table from `-S` text; rules get counter slots in order from FIRST_RULE_COUNTER.
    pub(crate) fn table(db: &NameDb, text: &str) -> Table {
        let mut table = Table::of_chains(Vec::new());
        let mut slot = crate::model::FIRST_RULE_COUNTER;
        for line in golden(text).lines() {
            let words = split_words(line).unwrap();
            match (words[0].as_str(), words[1].as_str()) {
                ("-P", name) => table.chains.push(Chain {
                    name: name.into(),
                    policy: Some(if words[2] == "DROP" {
                        Policy::Drop
                    } else {
                        Policy::Accept
                    }),
                    policy_counter: table.chains.len() as u32,
                    rules: Default::default(),
                }),
                ("-N", name) => table.chains.push(Chain {
                    name: name.into(),
                    policy: None,
                    policy_counter: 0,
                    rules: Default::default(),
                }),
                _ => {
                    let (chain, mut rule) = parse_rule_line_with(db, &words).unwrap();
                    rule.counter = slot;
                    slot += 1;
                    table.chain_mut(&chain).unwrap().rules.push(rule);
                }
            }
        }
        table
    }

    /// iptables-legacy -S of rules added with these `-c` counters.
    pub(crate) const RULES: &str = r#"-P INPUT DROP$
-P FORWARD ACCEPT$
-P OUTPUT ACCEPT$
-A INPUT -s 1.2.3.4/32 -d 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT$
-A INPUT ! -s 127.0.0.1/32 ! -d 127.0.0.0/8 -p udp -m udp ! --sport 53 --dport 1000:2000 -j DROP$
-A INPUT -i eth0 -p icmp -j ACCEPT$
-A INPUT ! -i veth+ ! -p tcp -j RETURN$
-A INPUT -p gre$
-A INPUT -p tcp -m tcp --sport 20:21 ! --dport 80:8080 -m tcp --dport 1 -j ACCEPT$
-A FORWARD -i abcdefghijklmno -o x+ -p udp -m udp --dport 0:100 -j ACCEPT$
-A FORWARD -s 169.254.0.0/16 -p udp -m udp --sport 100:65535 -j DROP$
-A OUTPUT -o lo -p sctp -j ACCEPT$
-A OUTPUT ! -s 0.0.0.0/0 -p ipv6-icmp$
-A OUTPUT -p mobility-header$
-A OUTPUT -p udplite$
-A OUTPUT -p 253$
-A OUTPUT -d 192.168.1.0/24 -p sctp -j DROP$
"#;

    /// The counters the rules of RULES were given (`-c`), and the INPUT policy's.
    pub(crate) fn counters(slot: u32) -> (u64, u64) {
        match slot {
            0 => (12345678901, 98765432109876),
            3 => (123456, 98765432),
            4 => (99999, 100000),
            5 => (9999500, 9999499999),
            6 => (5, 1234567890123),
            7 => (1, 1),
            _ => (0, 0),
        }
    }

    /// A user chain, jumps and gotos.
    pub(crate) const USER_RULES: &str = r#"-P INPUT ACCEPT$
-P FORWARD ACCEPT$
-P OUTPUT ACCEPT$
-N USER$
-A INPUT -j USER$
-A INPUT -g USER$
-A INPUT -p tcp -m tcp --dport 22 -g USER$
-A USER -j RETURN$
-A USER -s 127.0.0.1/32 -d 0.0.0.0/8 -p udp -m udp --sport 53$
"#;

    #[test]
    fn list_rules_matches_iptables() {
        let db = debian();
        let t = table(&db, RULES);
        assert_eq!(
            list_rules_with(&db, &t, None, None, None).unwrap(),
            golden(RULES)
        );
        let verbose = r#"-P INPUT DROP -c 12345678901 98765432109876$
-P FORWARD ACCEPT -c 0 0$
-P OUTPUT ACCEPT -c 0 0$
-A INPUT -s 1.2.3.4/32 -d 10.0.0.0/8 -p tcp -m tcp --dport 22 -c 123456 98765432 -j ACCEPT$
-A INPUT ! -s 127.0.0.1/32 ! -d 127.0.0.0/8 -p udp -m udp ! --sport 53 --dport 1000:2000 -c 99999 100000 -j DROP$
-A INPUT -i eth0 -p icmp -c 9999500 9999499999 -j ACCEPT$
-A INPUT ! -i veth+ ! -p tcp -c 5 1234567890123 -j RETURN$
-A INPUT -p gre -c 1 1$
-A INPUT -p tcp -m tcp --sport 20:21 ! --dport 80:8080 -m tcp --dport 1 -c 0 0 -j ACCEPT$
-A FORWARD -i abcdefghijklmno -o x+ -p udp -m udp --dport 0:100 -c 0 0 -j ACCEPT$
-A FORWARD -s 169.254.0.0/16 -p udp -m udp --sport 100:65535 -c 0 0 -j DROP$
-A OUTPUT -o lo -p sctp -c 0 0 -j ACCEPT$
-A OUTPUT ! -s 0.0.0.0/0 -p ipv6-icmp -c 0 0$
-A OUTPUT -p mobility-header -c 0 0$
-A OUTPUT -p udplite -c 0 0$
-A OUTPUT -p 253 -c 0 0$
-A OUTPUT -d 192.168.1.0/24 -p sctp -c 0 0 -j DROP$
"#;
        assert_eq!(
            list_rules_with(&db, &t, None, None, Some(&counters)).unwrap(),
            golden(verbose)
        );
        assert_eq!(
            list_rules_with(&db, &t, Some("FORWARD"), Some(2), None).unwrap(),
            "-A FORWARD -s 169.254.0.0/16 -p udp -m udp --sport 100:65535 -j DROP\n"
        );
        assert_eq!(
            list_rules_with(&db, &t, Some("FORWARD"), Some(3), None).unwrap(),
            ""
        );
        let err = list_rules_with(&db, &t, Some("USER"), None, None).unwrap_err();
        assert_eq!(
            err.render("iptables"),
            "iptables: No chain/target/match by that name.\n"
        );

        let t = table(&db, USER_RULES);
        assert_eq!(
            list_rules_with(&db, &t, None, None, None).unwrap(),
            golden(USER_RULES)
        );
        assert_eq!(
            list_rules_with(&db, &t, Some("USER"), None, None).unwrap(),
            "-N USER\n-A USER -j RETURN\n-A USER -s 127.0.0.1/32 -d 0.0.0.0/8 -p udp -m udp --sport 53\n"
        );
    }

    /// The stored state is -S text: every line iptables prints parses back to the same rule.
    #[test]
    fn print_parse_round_trip() {
        let db = debian();
        let more = "-A FORWARD -s 1.2.0.0/16 -d 10.1.0.0/32 -i -ilo ! -o x -p tcp -m tcp ! --sport 5 ! --dport 6:7 -j DROP\n\
                    -A FORWARD ! -i eth+ -o eth+0 -p udp -m udp --dport 5:3 -m udp --dport 0 -m tcp -j RETURN\n\
                    -A OUTPUT -o -oeth0 ! -p 253 -m udp --sport 0:5\n\
                    -A OUTPUT -p tcp -m tcp --sport 1024:65535 --dport 22 -m udp --sport 5 -g USER\n\
                    -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
                    -A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT\n\
                    -A INPUT -m conntrack ! --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED\n\
                    -A FORWARD -i veth0 -m state --state NEW -m state ! --state INVALID -g USER\n\
                    -A OUTPUT -m conntrack --ctstate UNTRACKED -m state --state RELATED -j DROP\n";
        for line in golden(RULES)
            .lines()
            .chain(golden(USER_RULES).lines())
            .chain(more.lines())
        {
            if !line.starts_with("-A") {
                continue;
            }
            let (chain, rule) = parse_rule_line_with(&db, &split_words(line).unwrap()).unwrap();
            assert_eq!(spec(&db, &chain, &rule, None), line);
            let (_, again) = parse_rule_line_with(&db, &split_words(line).unwrap()).unwrap();
            assert!(again.same_spec(&rule), "{line}");
        }
    }
}
