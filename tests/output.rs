//! OUTPUT chain: rules in the host drop what the host itself sends (topology (a)).

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, scenarios};

scenarios!(
    output_by_destination_and_port,
    output_replies_and_policy,
    output_by_interface
);

/// Pings and connects made by the host, by destination and port.
fn output_by_destination_and_port(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&c1, &[80, 81]);
    lab.serve(&c2, &[80]);
    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C1} -p icmp -j DROP"));
    lab.expect(&host.ping(C1), Drop);
    lab.expect(&host.ping(C1_ALT), Pass);
    lab.expect(&host.ping(C2), Pass);
    lab.expect(&host.tcp(C1, 80), Pass);

    lab.ipt_ok(&host, "-F OUTPUT");
    lab.ipt_ok(&host, "-A OUTPUT -p tcp --dport 80 -j DROP");
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.expect(&host.tcp(C2, 80), Drop);
    lab.expect(&host.tcp(C1, 81), Pass);
    lab.expect(&host.udp(C1, 80), Pass);
    lab.expect(&host.ping(C1), Pass);

    lab.ipt_ok(&host, "-F OUTPUT");
    lab.ipt_ok(&host, &format!("-A OUTPUT -s {HOST1_ALT} -j DROP"));
    lab.expect(&host.ping(C1).src(HOST1_ALT), Drop);
    lab.expect(&host.ping(C1).src(HOST1), Pass);
    lab.check();
}

/// OUTPUT also sees the host's answers; `-P OUTPUT DROP`.
fn output_replies_and_policy(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    lab.serve(&c1, &[80]);
    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C1} -j DROP"));
    lab.expect(&c1.ping(HOST1), Drop); // the echo reply is dropped
    lab.expect(&c1.tcp(HOST1, 80), Drop); // the SYN-ACK is dropped
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Pass);
    lab.expect(&c2.ping(HOST2), Pass);

    lab.ipt_ok(&host, "-F");
    lab.ipt_ok(&host, "-A OUTPUT -p udp --sport 80 -j ACCEPT");
    lab.ipt_ok(&host, "-P OUTPUT DROP");
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&host.ping(C1), Drop);
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.ipt_ok(&host, "-P OUTPUT ACCEPT");
    lab.expect(&host.ping(C1), Pass);
    lab.expect(&host.tcp(C1, 80), Pass);
    lab.check();
}

/// `-o` in OUTPUT.
fn output_by_interface(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&c1, &[80]);
    lab.serve(&c2, &[80]);
    lab.ipt_ok(&host, "-A OUTPUT -o eth2 -j DROP");
    lab.expect(&host.ping(C2), Drop);
    lab.expect(&host.tcp(C2, 80), Drop);
    lab.expect(&host.ping(C1), Pass);
    lab.expect(&host.tcp(C1, 80), Pass);
    lab.ipt_ok(&host, "-R OUTPUT 1 ! -o eth2 -p tcp -j DROP");
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.expect(&host.tcp(C2, 80), Pass);
    lab.expect(&host.ping(C1), Pass);
    lab.check();
}
