//! INPUT chain: packets from c1/c2 to the host, rules in the host namespace (topology (a)).

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, scenarios};

scenarios!(
    input_by_source,
    input_by_destination,
    input_by_protocol,
    input_by_port,
    input_by_interface,
    input_delete_restores,
    input_policy_drop,
    input_insert_replace_flush,
);

/// `-s` (address, prefix or any mask, `!`) decides for ping, TCP and UDP alike.
fn input_by_source(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, &format!("-A INPUT -s {C1_ALT} -j DROP"));
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);
    lab.expect(&c1.tcp(HOST1, 80).src(C1_ALT), Drop);
    lab.expect(&c1.udp(HOST1, 80).src(C1_ALT), Drop);
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    lab.expect(&c1.tcp(HOST1, 80).src(C1), Pass);
    lab.expect(&c1.udp(HOST1, 80).src(C1), Pass);
    lab.expect(&c2.ping(HOST2), Pass);

    // A prefix: 198.18.1.0/31 holds .0 and .1, not .3.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -s 198.18.1.0/31 -p icmp -j DROP");
    lab.expect(&c1.ping(HOST1).src(C1), Drop);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Pass);
    lab.expect(&c2.ping(HOST2), Pass);

    // Negation: everything but c2's address.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, &format!("-A INPUT ! -s {C2} -p tcp -j DROP"));
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 80).src(C1_ALT), Drop);
    lab.expect(&c2.tcp(HOST2, 80), Pass);
    lab.expect(&c1.ping(HOST1), Pass);

    // A mask that is not a prefix: the last two bits set (.3), whatever the third byte; and
    // one negated on -d: every destination whose bit 2 is clear (.2, not .4).
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -s 198.18.7.3/255.255.0.3 -p icmp -j DROP");
    lab.ipt_ok(&host, "-A INPUT -p udp ! -d 0.0.0.4/0.0.0.4 -j DROP");
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    lab.expect(&c2.ping(HOST2), Pass);
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1_ALT, 80), Pass);
    lab.check();
}

/// `-d` picks the host's address, whatever interface it arrives on.
fn input_by_destination(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, &format!("-A INPUT -d {HOST1_ALT} -j DROP"));
    lab.expect(&c1.ping(HOST1_ALT), Drop);
    lab.expect(&c1.tcp(HOST1_ALT, 80), Drop);
    lab.expect(&c1.udp(HOST1_ALT, 80), Drop);
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c2.ping(HOST1_ALT), Drop); // comes in on eth2, still for HOST1_ALT

    lab.ipt_ok(&host, "-F");
    lab.ipt_ok(&host, &format!("-A INPUT -p udp ! -d {HOST2} -j DROP"));
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST2, 80), Pass); // c1 reaching the host's eth2 address: still INPUT
    lab.expect(&c2.udp(HOST2, 80), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.check();
}

/// `-p icmp|tcp|udp` and `! -p`.
fn input_by_protocol(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, "-A INPUT -p icmp -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.udp(HOST1, 80), Pass);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p tcp -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1, 80), Pass);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p udp -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.udp(HOST1, 80), Drop);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT ! -p icmp -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.check();
}

/// `--dport` single, range, `!`; `--sport`.
fn input_by_port(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[22, 80, 443, 7999, 8000, 8005, 8010, 8011]);

    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 80 -j DROP");
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 443 -j DROP");
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 443), Pass);
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c1.udp(HOST1, 443), Drop);
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1), Pass);

    // A range, both protocols (two rules), boundaries included.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 8000:8010 -j DROP");
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 8000:8010 -j DROP");
    for p in [8000, 8005, 8010] {
        lab.expect(&c1.tcp(HOST1, p), Drop);
        lab.expect(&c1.udp(HOST1, p), Drop);
    }
    for p in [7999, 8011] {
        lab.expect(&c1.tcp(HOST1, p), Pass);
        lab.expect(&c1.udp(HOST1, p), Pass);
    }

    // Negation: every TCP port but 22.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p tcp ! --dport 22 -j DROP");
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 8005), Drop);
    lab.expect(&c1.udp(HOST1, 80), Pass);

    // Source port.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p udp --sport 5353 -j DROP");
    lab.expect(&c1.udp(HOST1, 80).sport(5353), Drop);
    lab.expect(&c1.udp(HOST1, 80).sport(5354), Pass);
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.check();
}

/// `-i` (exact, `!`, `+` wildcard) tells the two clients apart.
fn input_by_interface(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, "-A INPUT -i eth1 -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.ping(HOST2), Drop); // c1 to the eth2 address still enters on eth1
    lab.expect(&c2.ping(HOST2), Pass);
    lab.expect(&c2.tcp(HOST2, 80), Pass);
    lab.expect(&c2.ping(HOST1), Pass); // c2 to the eth1 address enters on eth2

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT ! -i eth1 -p icmp -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c2.ping(HOST2), Drop);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -i eth+ -p udp -j DROP");
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c2.udp(HOST2, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Pass);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -i eth3 -j DROP"); // no such interface: matches nothing
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c2.ping(HOST2), Pass);
    lab.check();
}

/// Deleting a rule, by its specification or by its number, brings the traffic back.
fn input_delete_restores(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    let rule = format!("-A INPUT -s {C1} -p icmp -j DROP");
    lab.ipt_ok(&host, &rule);
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(&host, &rule.replacen("-A", "-D", 1));
    lab.expect(&c1.ping(HOST1), Pass);

    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 80 -j DROP");
    lab.ipt_ok(&host, &format!("-A INPUT -s {C2} -j DROP"));
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c2.ping(HOST2), Drop);
    lab.ipt_ok(&host, "-D INPUT 1");
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c2.ping(HOST2), Drop);
    lab.ipt_ok(&host, "-D INPUT 1");
    lab.expect(&c2.ping(HOST2), Pass);
    assert_eq!(
        lab.rules(&host),
        "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"
    );
    lab.check();
}

/// `-P INPUT DROP` drops what no rule accepts; `-P INPUT ACCEPT` brings it back.
fn input_policy_drop(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[22, 80]);
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 22 -j ACCEPT");
    lab.ipt_ok(&host, &format!("-A INPUT -s {C2} -p icmp -j ACCEPT"));
    lab.ipt_ok(&host, "-P INPUT DROP");
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c2.ping(HOST2), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&c2.tcp(HOST2, 80), Drop);
    lab.ipt_ok(&host, "-P INPUT ACCEPT");
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.check();
}

/// `-I` puts a rule in front, `-R` replaces one in place, `-F` empties the chain.
fn input_insert_replace_flush(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, "-A INPUT -p icmp -j DROP");
    lab.expect(&c1.ping(HOST1).src(C1), Drop);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);

    lab.ipt_ok(&host, &format!("-I INPUT -s {C1} -p icmp -j ACCEPT"));
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);

    lab.ipt_ok(&host, &format!("-R INPUT 1 -s {C1_ALT} -p icmp -j ACCEPT"));
    lab.expect(&c1.ping(HOST1).src(C1), Drop);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Pass);

    // -I with a position: between the ACCEPT (1) and the DROP (now 3).
    lab.ipt_ok(&host, &format!("-I INPUT 2 -s {C2} -p icmp -j ACCEPT"));
    lab.expect(&c2.ping(HOST2), Pass);
    lab.expect(&c1.ping(HOST1).src(C1), Drop);
    assert_eq!(
        lab.rules(&host),
        format!(
            "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n\
             -A INPUT -s {C1_ALT}/32 -p icmp -j ACCEPT\n\
             -A INPUT -s {C2}/32 -p icmp -j ACCEPT\n\
             -A INPUT -p icmp -j DROP\n"
        )
    );

    // -R turning the last DROP into an ACCEPT.
    lab.ipt_ok(&host, "-R INPUT 3 -p icmp -j ACCEPT");
    lab.expect(&c1.ping(HOST1).src(C1), Pass);

    lab.ipt_ok(&host, "-A INPUT -p tcp -j DROP");
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.ipt_ok(&host, "-F");
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    assert_eq!(
        lab.rules(&host),
        "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"
    );
    lab.check();
}
