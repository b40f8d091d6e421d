//! `-L` tests; the expected text was printed by iptables-legacy 1.8.9 in a scratch network
//! namespace for the same rules and counters (set with `-c`).

use super::*;
use crate::model::Zeroing;
use crate::ruleset::print::tests::{RULES, USER_RULES, counters, golden, table};
use crate::syntax::{parse_args, parse_rule_line_with, split_words};
use crate::xtables::netdb::tests::debian;

fn options(numeric: bool, verbose: bool, exact: bool, line_numbers: bool) -> ListOptions {
    ListOptions {
        numeric,
        verbose,
        exact,
        line_numbers,
    }
}

/// (iptables arguments, output)
const LISTINGS: &[(&str, &str)] = &[
    (
        "-L",
        r#"Chain INPUT (policy DROP)$
target     prot opt source               destination         $
ACCEPT     tcp  --  1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
DROP       udp  -- !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
ACCEPT     icmp --  anywhere             anywhere            $
RETURN    !tcp  --  anywhere             anywhere            $
           gre  --  anywhere             anywhere            $
ACCEPT     tcp  --  anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
$
Chain FORWARD (policy ACCEPT)$
target     prot opt source               destination         $
ACCEPT     udp  --  anywhere             anywhere             udp dpts:0:100$
DROP       udp  --  link-local/16        anywhere             udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT)$
target     prot opt source               destination         $
ACCEPT     sctp --  anywhere             anywhere            $
           ipv6-icmp -- !anywhere             anywhere            $
           mobility-header --  anywhere             anywhere            $
           udplite --  anywhere             anywhere            $
           253  --  anywhere             anywhere            $
DROP       sctp --  anywhere             192.168.1.0/24      $
"#,
    ),
    (
        "-L -n",
        r#"Chain INPUT (policy DROP)$
target     prot opt source               destination         $
ACCEPT     6    --  1.2.3.4              10.0.0.0/8           tcp dpt:22$
DROP       17   -- !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000$
ACCEPT     1    --  0.0.0.0/0            0.0.0.0/0           $
RETURN    !6    --  0.0.0.0/0            0.0.0.0/0           $
           47   --  0.0.0.0/0            0.0.0.0/0           $
ACCEPT     6    --  0.0.0.0/0            0.0.0.0/0            tcp spts:20:21 dpts:!80:8080 tcp dpt:1$
$
Chain FORWARD (policy ACCEPT)$
target     prot opt source               destination         $
ACCEPT     17   --  0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
DROP       17   --  169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT)$
target     prot opt source               destination         $
ACCEPT     132  --  0.0.0.0/0            0.0.0.0/0           $
           58   -- !0.0.0.0/0            0.0.0.0/0           $
           135  --  0.0.0.0/0            0.0.0.0/0           $
           136  --  0.0.0.0/0            0.0.0.0/0           $
           253  --  0.0.0.0/0            0.0.0.0/0           $
DROP       132  --  0.0.0.0/0            192.168.1.0/24      $
"#,
    ),
    (
        "-L -v",
        r#"Chain INPUT (policy DROP 12G packets, 99T bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
 123K   99M ACCEPT     tcp  --  any    any     1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
99999  100K DROP       udp  --  any    any    !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
  10M   10G ACCEPT     icmp --  eth0   any     anywhere             anywhere            $
    5 1235G RETURN    !tcp  --  !veth+ any     anywhere             anywhere            $
    1     1            gre  --  any    any     anywhere             anywhere            $
    0     0 ACCEPT     tcp  --  any    any     anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
    0     0 ACCEPT     udp  --  abcdefghijklmno x+      anywhere             anywhere             udp dpts:0:100$
    0     0 DROP       udp  --  any    any     link-local/16        anywhere             udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
    0     0 ACCEPT     sctp --  any    lo      anywhere             anywhere            $
    0     0            ipv6-icmp --  any    any    !anywhere             anywhere            $
    0     0            mobility-header --  any    any     anywhere             anywhere            $
    0     0            udplite --  any    any     anywhere             anywhere            $
    0     0            253  --  any    any     anywhere             anywhere            $
    0     0 DROP       sctp --  any    any     anywhere             192.168.1.0/24      $
"#,
    ),
    (
        "-L -v -n",
        r#"Chain INPUT (policy DROP 12G packets, 99T bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
 123K   99M ACCEPT     6    --  *      *       1.2.3.4              10.0.0.0/8           tcp dpt:22$
99999  100K DROP       17   --  *      *      !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000$
  10M   10G ACCEPT     1    --  eth0   *       0.0.0.0/0            0.0.0.0/0           $
    5 1235G RETURN    !6    --  !veth+ *       0.0.0.0/0            0.0.0.0/0           $
    1     1            47   --  *      *       0.0.0.0/0            0.0.0.0/0           $
    0     0 ACCEPT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spts:20:21 dpts:!80:8080 tcp dpt:1$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
    0     0 ACCEPT     17   --  abcdefghijklmno x+      0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
    0     0 DROP       17   --  *      *       169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
 pkts bytes target     prot opt in     out     source               destination         $
    0     0 ACCEPT     132  --  *      lo      0.0.0.0/0            0.0.0.0/0           $
    0     0            58   --  *      *      !0.0.0.0/0            0.0.0.0/0           $
    0     0            135  --  *      *       0.0.0.0/0            0.0.0.0/0           $
    0     0            136  --  *      *       0.0.0.0/0            0.0.0.0/0           $
    0     0            253  --  *      *       0.0.0.0/0            0.0.0.0/0           $
    0     0 DROP       132  --  *      *       0.0.0.0/0            192.168.1.0/24      $
"#,
    ),
    (
        "-L -v -x",
        r#"Chain INPUT (policy DROP 12345678901 packets, 98765432109876 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
  123456 98765432 ACCEPT     tcp  --  any    any     1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
   99999   100000 DROP       udp  --  any    any    !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
 9999500 9999499999 ACCEPT     icmp --  eth0   any     anywhere             anywhere            $
       5 1234567890123 RETURN    !tcp  --  !veth+ any     anywhere             anywhere            $
       1        1            gre  --  any    any     anywhere             anywhere            $
       0        0 ACCEPT     tcp  --  any    any     anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
       0        0 ACCEPT     udp  --  abcdefghijklmno x+      anywhere             anywhere             udp dpts:0:100$
       0        0 DROP       udp  --  any    any     link-local/16        anywhere             udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
       0        0 ACCEPT     sctp --  any    lo      anywhere             anywhere            $
       0        0            ipv6-icmp --  any    any    !anywhere             anywhere            $
       0        0            mobility-header --  any    any     anywhere             anywhere            $
       0        0            udplite --  any    any     anywhere             anywhere            $
       0        0            253  --  any    any     anywhere             anywhere            $
       0        0 DROP       sctp --  any    any     anywhere             192.168.1.0/24      $
"#,
    ),
    (
        "-L -v -n -x",
        r#"Chain INPUT (policy DROP 12345678901 packets, 98765432109876 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
  123456 98765432 ACCEPT     6    --  *      *       1.2.3.4              10.0.0.0/8           tcp dpt:22$
   99999   100000 DROP       17   --  *      *      !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000$
 9999500 9999499999 ACCEPT     1    --  eth0   *       0.0.0.0/0            0.0.0.0/0           $
       5 1234567890123 RETURN    !6    --  !veth+ *       0.0.0.0/0            0.0.0.0/0           $
       1        1            47   --  *      *       0.0.0.0/0            0.0.0.0/0           $
       0        0 ACCEPT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spts:20:21 dpts:!80:8080 tcp dpt:1$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
       0        0 ACCEPT     17   --  abcdefghijklmno x+      0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
       0        0 DROP       17   --  *      *       169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
    pkts      bytes target     prot opt in     out     source               destination         $
       0        0 ACCEPT     132  --  *      lo      0.0.0.0/0            0.0.0.0/0           $
       0        0            58   --  *      *      !0.0.0.0/0            0.0.0.0/0           $
       0        0            135  --  *      *       0.0.0.0/0            0.0.0.0/0           $
       0        0            136  --  *      *       0.0.0.0/0            0.0.0.0/0           $
       0        0            253  --  *      *       0.0.0.0/0            0.0.0.0/0           $
       0        0 DROP       132  --  *      *       0.0.0.0/0            192.168.1.0/24      $
"#,
    ),
    (
        "-L --line-numbers",
        r#"Chain INPUT (policy DROP)$
num  target     prot opt source               destination         $
1    ACCEPT     tcp  --  1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
2    DROP       udp  -- !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
3    ACCEPT     icmp --  anywhere             anywhere            $
4    RETURN    !tcp  --  anywhere             anywhere            $
5               gre  --  anywhere             anywhere            $
6    ACCEPT     tcp  --  anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
$
Chain FORWARD (policy ACCEPT)$
num  target     prot opt source               destination         $
1    ACCEPT     udp  --  anywhere             anywhere             udp dpts:0:100$
2    DROP       udp  --  link-local/16        anywhere             udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT)$
num  target     prot opt source               destination         $
1    ACCEPT     sctp --  anywhere             anywhere            $
2               ipv6-icmp -- !anywhere             anywhere            $
3               mobility-header --  anywhere             anywhere            $
4               udplite --  anywhere             anywhere            $
5               253  --  anywhere             anywhere            $
6    DROP       sctp --  anywhere             192.168.1.0/24      $
"#,
    ),
    (
        "-L -n --line-numbers",
        r#"Chain INPUT (policy DROP)$
num  target     prot opt source               destination         $
1    ACCEPT     6    --  1.2.3.4              10.0.0.0/8           tcp dpt:22$
2    DROP       17   -- !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000$
3    ACCEPT     1    --  0.0.0.0/0            0.0.0.0/0           $
4    RETURN    !6    --  0.0.0.0/0            0.0.0.0/0           $
5               47   --  0.0.0.0/0            0.0.0.0/0           $
6    ACCEPT     6    --  0.0.0.0/0            0.0.0.0/0            tcp spts:20:21 dpts:!80:8080 tcp dpt:1$
$
Chain FORWARD (policy ACCEPT)$
num  target     prot opt source               destination         $
1    ACCEPT     17   --  0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
2    DROP       17   --  169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT)$
num  target     prot opt source               destination         $
1    ACCEPT     132  --  0.0.0.0/0            0.0.0.0/0           $
2               58   -- !0.0.0.0/0            0.0.0.0/0           $
3               135  --  0.0.0.0/0            0.0.0.0/0           $
4               136  --  0.0.0.0/0            0.0.0.0/0           $
5               253  --  0.0.0.0/0            0.0.0.0/0           $
6    DROP       132  --  0.0.0.0/0            192.168.1.0/24      $
"#,
    ),
    (
        "-L -v --line-numbers",
        r#"Chain INPUT (policy DROP 12G packets, 99T bytes)$
num   pkts bytes target     prot opt in     out     source               destination         $
1     123K   99M ACCEPT     tcp  --  any    any     1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
2    99999  100K DROP       udp  --  any    any    !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
3      10M   10G ACCEPT     icmp --  eth0   any     anywhere             anywhere            $
4        5 1235G RETURN    !tcp  --  !veth+ any     anywhere             anywhere            $
5        1     1            gre  --  any    any     anywhere             anywhere            $
6        0     0 ACCEPT     tcp  --  any    any     anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
num   pkts bytes target     prot opt in     out     source               destination         $
1        0     0 ACCEPT     udp  --  abcdefghijklmno x+      anywhere             anywhere             udp dpts:0:100$
2        0     0 DROP       udp  --  any    any     link-local/16        anywhere             udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
num   pkts bytes target     prot opt in     out     source               destination         $
1        0     0 ACCEPT     sctp --  any    lo      anywhere             anywhere            $
2        0     0            ipv6-icmp --  any    any    !anywhere             anywhere            $
3        0     0            mobility-header --  any    any     anywhere             anywhere            $
4        0     0            udplite --  any    any     anywhere             anywhere            $
5        0     0            253  --  any    any     anywhere             anywhere            $
6        0     0 DROP       sctp --  any    any     anywhere             192.168.1.0/24      $
"#,
    ),
    (
        "-L -v -x -n --line-numbers",
        r#"Chain INPUT (policy DROP 12345678901 packets, 98765432109876 bytes)$
num      pkts      bytes target     prot opt in     out     source               destination         $
1      123456 98765432 ACCEPT     6    --  *      *       1.2.3.4              10.0.0.0/8           tcp dpt:22$
2       99999   100000 DROP       17   --  *      *      !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000$
3     9999500 9999499999 ACCEPT     1    --  eth0   *       0.0.0.0/0            0.0.0.0/0           $
4           5 1234567890123 RETURN    !6    --  !veth+ *       0.0.0.0/0            0.0.0.0/0           $
5           1        1            47   --  *      *       0.0.0.0/0            0.0.0.0/0           $
6           0        0 ACCEPT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spts:20:21 dpts:!80:8080 tcp dpt:1$
$
Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)$
num      pkts      bytes target     prot opt in     out     source               destination         $
1           0        0 ACCEPT     17   --  abcdefghijklmno x+      0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
2           0        0 DROP       17   --  *      *       169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
$
Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)$
num      pkts      bytes target     prot opt in     out     source               destination         $
1           0        0 ACCEPT     132  --  *      lo      0.0.0.0/0            0.0.0.0/0           $
2           0        0            58   --  *      *      !0.0.0.0/0            0.0.0.0/0           $
3           0        0            135  --  *      *       0.0.0.0/0            0.0.0.0/0           $
4           0        0            136  --  *      *       0.0.0.0/0            0.0.0.0/0           $
5           0        0            253  --  *      *       0.0.0.0/0            0.0.0.0/0           $
6           0        0 DROP       132  --  *      *       0.0.0.0/0            192.168.1.0/24      $
"#,
    ),
    (
        "-L INPUT -x",
        r#"Chain INPUT (policy DROP)$
target     prot opt source               destination         $
ACCEPT     tcp  --  1.2.3.4              10.0.0.0/8           tcp dpt:ssh$
DROP       udp  -- !localhost           !loopback/8           udp spt:!domain dpts:1000:2000$
ACCEPT     icmp --  anywhere             anywhere            $
RETURN    !tcp  --  anywhere             anywhere            $
           gre  --  anywhere             anywhere            $
ACCEPT     tcp  --  anywhere             anywhere             tcp spts:ftp-data:ftp dpts:!http:http-alt tcp dpt:tcpmux$
"#,
    ),
    (
        "-L FORWARD -n -x --line-numbers",
        r#"Chain FORWARD (policy ACCEPT)$
num  target     prot opt source               destination         $
1    ACCEPT     17   --  0.0.0.0/0            0.0.0.0/0            udp dpts:0:100$
2    DROP       17   --  169.254.0.0/16       0.0.0.0/0            udp spts:100:65535$
"#,
    ),
];

#[test]
fn listings_match_iptables() {
    let db = debian();
    let t = table(&db, RULES);
    for (args, expected) in LISTINGS {
        let command = parse_args("iptables", &split_words(args).unwrap())
            .unwrap()
            .command;
        let Command::List {
            chain,
            rulenum,
            options,
            ..
        } = command
        else {
            panic!("{args} is not -L");
        };
        let listed = list_with(&db, &t, chain.as_deref(), rulenum, &options, &counters);
        assert_eq!(listed.unwrap(), golden(expected), "iptables {args}");
    }
}

#[test]
fn one_rule_and_missing_chains() {
    let db = debian();
    let t = table(&db, RULES);
    let one = list_with(
        &db,
        &t,
        Some("INPUT"),
        Some(2),
        &options(true, true, true, true),
        &counters,
    );
    assert_eq!(
        one.unwrap(),
        "2       99999   100000 DROP       17   --  *      *      !127.0.0.1           !127.0.0.0/8          udp spt:!53 dpts:1000:2000\n"
    );
    assert_eq!(
        list_with(
            &db,
            &t,
            Some("INPUT"),
            Some(7),
            &options(false, false, false, false),
            &counters
        )
        .unwrap(),
        ""
    );
    let err = list_with(
        &db,
        &t,
        Some("FOO"),
        None,
        &ListOptions::default(),
        &counters,
    )
    .unwrap_err();
    assert_eq!(
        (err.code, err.render("iptables").as_str()),
        (1, "iptables: No chain/target/match by that name.\n")
    );
}

#[test]
fn user_chains_and_goto() {
    let db = debian();
    let t = table(&db, USER_RULES);
    let zero = |_| (0, 0);
    let expected = r#"Chain INPUT (policy ACCEPT)$
target     prot opt source               destination         $
USER       all  --  anywhere             anywhere            $
USER       all  --  anywhere             anywhere            [goto] $
USER       tcp  --  anywhere             anywhere            [goto]  tcp dpt:ssh$
$
Chain FORWARD (policy ACCEPT)$
target     prot opt source               destination         $
$
Chain OUTPUT (policy ACCEPT)$
target     prot opt source               destination         $
$
Chain USER (3 references)$
target     prot opt source               destination         $
RETURN     all  --  anywhere             anywhere            $
           udp  --  localhost            default/8            udp spt:domain$
"#;
    assert_eq!(
        list_with(&db, &t, None, None, &ListOptions::default(), &zero).unwrap(),
        golden(expected)
    );
    let expected = r#"Chain USER (3 references)$
 pkts bytes target     prot opt in     out     source               destination         $
    0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0           $
    0     0            17   --  *      *       127.0.0.1            0.0.0.0/8            udp spt:53$
"#;
    let listed = list_with(
        &db,
        &t,
        Some("USER"),
        None,
        &options(true, true, false, false),
        &zero,
    );
    assert_eq!(listed.unwrap(), golden(expected));
}

fn rule(line: &str) -> Rule {
    parse_rule_line_with(&debian(), &split_words(line).unwrap())
        .unwrap()
        .1
}

#[test]
fn verbose_echo_matches_iptables() {
    let db = debian();
    let line = |spec: &str| {
        let mut out = String::new();
        firewall(&mut out, &db, &rule(spec), 0, (0, 0), Format::PRINT_RULE);
        out
    };
    for (spec, expected) in [
        (
            "-A FORWARD -s 10.0.0.0/8 ! -d 1.2.3.4/32 ! -i eth2+ -o eth1 -p udp -m udp ! --dport 53:54 -g USER",
            "USER  udp opt -- in !eth2+ out eth1  10.0.0.0/8 !-> 1.2.3.4  [goto]  udp dpts:!53:54\n",
        ),
        (
            "-A OUTPUT -o lo -p gre",
            "  47 opt -- in * out lo  0.0.0.0/0  -> 0.0.0.0/0  \n",
        ),
        (
            "-A OUTPUT -p ipv6-icmp",
            "  ipv6-icmp opt -- in * out *  0.0.0.0/0  -> 0.0.0.0/0  \n",
        ),
        (
            "-A OUTPUT -p 135",
            "  mobility-header opt -- in * out *  0.0.0.0/0  -> 0.0.0.0/0  \n",
        ),
        (
            "-A INPUT ! -p tcp -i eth0 -s 10.0.0.0/8",
            " !tcp opt -- in eth0 out *  10.0.0.0/8  -> 0.0.0.0/0  \n",
        ),
        (
            "-A FORWARD -p tcp -m tcp --sport 7 -m tcp ! --dport 9 -j ACCEPT",
            "ACCEPT  tcp opt -- in * out *  0.0.0.0/0  -> 0.0.0.0/0   tcp spt:7 tcp dpt:!9\n",
        ),
        (
            "-A FORWARD -s 198.18.0.1 -p udp -m udp --sport 1:2 -j DROP",
            "DROP  udp opt -- in * out *  198.18.0.1  -> 0.0.0.0/0   udp spts:1:2\n",
        ),
    ] {
        assert_eq!(line(spec), expected, "{spec}");
    }

    let t = table(&db, USER_RULES);
    let flush = Command::Flush { chain: None };
    assert_eq!(
        verbose_echo(&t, &flush).unwrap(),
        "Flushing chain `INPUT'\nFlushing chain `FORWARD'\nFlushing chain `OUTPUT'\nFlushing chain `USER'\n"
    );
    let zero = Command::Zero {
        chain: Some("USER".into()),
        rulenum: None,
    };
    assert_eq!(verbose_echo(&t, &zero).unwrap(), "Zeroing chain `USER'\n");
    let zero_one = Command::Zero {
        chain: Some("USER".into()),
        rulenum: Some(1),
    };
    assert_eq!(verbose_echo(&t, &zero_one).unwrap(), "");
    let list = Command::List {
        chain: Some("INPUT".into()),
        rulenum: Some(1),
        options: ListOptions::default(),
        zero: Some(Zeroing::Chains),
    };
    assert_eq!(verbose_echo(&t, &list).unwrap(), "Zeroing chain `INPUT'\n");
    let list_one = Command::List {
        chain: Some("INPUT".into()),
        rulenum: Some(1),
        options: ListOptions::default(),
        zero: Some(Zeroing::Rule),
    };
    assert_eq!(verbose_echo(&t, &list_one).unwrap(), "");
    let delete_all = Command::DeleteChain { chain: None };
    assert_eq!(
        verbose_echo(&t, &delete_all).unwrap(),
        "Deleting chain `USER'\n"
    );
    let goto = Command::Append {
        chain: "INPUT".into(),
        rules: vec![rule("-A INPUT -g NOWHERE")],
    };
    assert_eq!(
        verbose_echo(&t, &goto).unwrap_err().message,
        "goto 'NOWHERE' is not a chain"
    );
    let policy = Command::Policy {
        chain: "INPUT".into(),
        policy: Policy::Drop,
    };
    assert_eq!(verbose_echo(&t, &policy).unwrap(), "");
}
