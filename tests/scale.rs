//! 1,000 rules where only the last one matches the traffic under test, and a chain long enough
//! for bitmaps of 256 words (one to a block: the classifier reads their summaries at fixed places).

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Pair, Pass, scenarios};

scenarios!(
    scale_1000_port_rules,
    scale_1000_address_rules,
    scale_9000_rules_one_chain
);

/// Runs `-A <rule with $i>` for i in `from..=to` through one `ip netns exec` (a shell loop
/// around the firewall binary, `-w` every time), stopping at the first failure.
fn append_loop(lab: &Lab, ns: &Ns, from: u32, to: u32, rule: &str) {
    lab.note_fw_use(ns);
    let script = format!(
        "i={from}; while [ $i -le {to} ]; do \"$0\" -w -A {rule} || {{ echo \"failed at $i\" >&2; exit 1; }}; i=$((i+1)); done"
    );
    ns.exec_timeout(
        &["sh", "-c", &script, lab.fw.bin_str()],
        Duration::from_secs(1800),
    )
    .expect_ok();
}

fn check_rule_count(lab: &Lab, ns: &Ns, want: usize) {
    let s = lab.rules(ns);
    let n = s.lines().filter(|l| l.starts_with("-A INPUT ")).count();
    assert_eq!(n, want, "[{}] rules in -S", lab.fw.label());
}

/// 999 rules dropping TCP ports 10001..10999, then one dropping port 80.
fn scale_1000_port_rules(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[80, 81, 10000, 10001, 10500, 10997, 10998, 10999]);
    append_loop(&lab, &host, 10001, 10999, "INPUT -p tcp --dport $i -j DROP");
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 80 -j DROP");
    check_rule_count(&lab, &host, 1000);
    let s = lab.rules(&host);
    let a: Vec<&str> = s.lines().filter(|l| l.starts_with("-A ")).collect();
    assert_eq!(a[0], "-A INPUT -p tcp -m tcp --dport 10001 -j DROP");
    assert_eq!(a[998], "-A INPUT -p tcp -m tcp --dport 10999 -j DROP");
    assert_eq!(a[999], "-A INPUT -p tcp -m tcp --dport 80 -j DROP");

    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 10500), Drop);
    lab.expect(&c1.tcp(HOST1, 10999), Drop);
    lab.expect(&c1.tcp(HOST1, 81), Pass);
    lab.expect(&c1.tcp(HOST1, 10000), Pass);
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1), Pass);

    lab.ipt_ok(&host, "-D INPUT 1000");
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.tcp(HOST1, 10999), Drop);
    // Changes at the head of a long chain move every rule after them (one bit in every
    // word of every bitmap): the rules in the last words must still hold.
    lab.ipt_ok(&host, "-I INPUT 1 -p tcp --dport 10500 -j ACCEPT");
    lab.expect(&c1.tcp(HOST1, 10500), Pass);
    lab.expect(&c1.tcp(HOST1, 10999), Drop);
    lab.expect(&c1.tcp(HOST1, 10001), Drop);
    check_rule_count(&lab, &host, 1000);
    lab.ipt_ok(&host, "-R INPUT 2 -p tcp --dport 10998 -j ACCEPT");
    lab.expect(&c1.tcp(HOST1, 10998), Pass);
    lab.expect(&c1.tcp(HOST1, 10001), Pass);
    lab.expect(&c1.tcp(HOST1, 10997), Drop);
    lab.ipt_ok(&host, "-D INPUT 1");
    lab.expect(&c1.tcp(HOST1, 10500), Drop);
    lab.expect(&c1.tcp(HOST1, 10998), Pass);
    lab.expect(&c1.tcp(HOST1, 10999), Drop);
    lab.expect(&c1.tcp(HOST1, 81), Pass);
    lab.check();
}

/// 999 rules dropping sources in 198.19.0.0/16 (none of them the clients), then one dropping
/// c1's second address.
fn scale_1000_address_rules(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80]);
    append_loop(
        &lab,
        &host,
        1,
        999,
        "INPUT -s 198.19.$((i / 250)).$((i % 250 + 1)) -j DROP",
    );
    lab.ipt_ok(&host, &format!("-A INPUT -s {C1_ALT} -j DROP"));
    check_rule_count(&lab, &host, 1000);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);
    lab.expect(&c1.tcp(HOST1, 80).src(C1_ALT), Drop);
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    lab.expect(&c1.tcp(HOST1, 80).src(C1), Pass);
    lab.expect(&c2.ping(HOST2), Pass);
    lab.ipt_ok(&host, "-F");
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Pass);
    lab.check();
}

/// 9,000 rules in INPUT (over 8,192: bitmaps of 256 words, each block holding one), restored:
/// ports 20000..28998 dropped, then sources, then port 80 last. The matching rules lie in
/// every summary word (rules 0, 4,096, 8,192 and up).
fn scale_9000_rules_one_chain(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[80, 81, 20000, 24100, 28998, 28999]);
    let mut input = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for port in 20000..28999 {
        input += &format!("-A INPUT -p tcp -m tcp --dport {port} -j DROP\n");
    }
    input += &format!("-A INPUT -s {C1_ALT}/32 -j DROP\n");
    input += "-A INPUT -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n";
    lab.restore_ok(&host, "", &input);
    check_rule_count(&lab, &host, 9001);
    for port in [80, 20000, 24100, 28998] {
        lab.expect(&c1.tcp(HOST1, port), Drop);
    }
    lab.expect(&c1.tcp(HOST1, 81), Pass);
    lab.expect(&c1.tcp(HOST1, 28999), Pass);
    lab.expect(&c1.ping(HOST1).src(C1_ALT), Drop);
    lab.expect(&c1.ping(HOST1).src(C1), Pass);
    lab.expect(&c2.udp(HOST2, 80), Pass);
    lab.ipt_ok(&host, "-I INPUT 1 -p tcp --dport 28998 -j ACCEPT");
    lab.expect(&c1.tcp(HOST1, 28998), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.check();
}
