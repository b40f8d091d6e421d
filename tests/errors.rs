//! Errors: the same exit code and the same message as iptables-legacy (modulo the program's
//! name and version), and no change at all to the ruleset.
//!
//! The reference messages are not written down here: every command also runs against
//! iptables-legacy in a sibling namespace, and the two are compared.

use pcn_iptables_tests::listing::normalize_stderr;
use pcn_iptables_tests::{Fw, Lab, scenarios};

scenarios!(errors_basic, errors_more);

/// Rules present before the bad commands (in both namespaces).
const SETUP: &str = "-A INPUT -s 198.18.1.3 -j DROP
                     -A INPUT -p tcp --dport 80 -j ACCEPT
                     -A OUTPUT -d 198.18.2.1 -j DROP";

/// Runs each `(command, expected exit code)` with `fw` and with iptables-legacy, each in a
/// namespace of its own holding [`SETUP`], and compares.
fn compare_errors(fw: Fw, cases: &[(&str, i32)]) {
    let mut lab = Lab::new(fw);
    let host = lab.ns("host");
    let mut reference = Lab::new(Fw::legacy());
    let ref_host = reference.ns("reference");
    lab.ipt_lines(&host, SETUP);
    reference.ipt_lines(&ref_host, SETUP);
    let before = lab.rules(&host);
    assert_eq!(
        before,
        reference.rules(&ref_host),
        "-S after the same setup"
    );
    let listing_before = lab.listing(&host);

    let mut problems = Vec::new();
    for &(args, want_code) in cases {
        let got = lab.ipt(&host, args);
        let refo = reference.ipt(&ref_host, args);
        assert_eq!(refo.code, Some(want_code), "the reference itself: {refo}");
        if got.code != Some(want_code) {
            problems.push(format!(
                "`{args}`: exit code {:?}, want {want_code}\n  {got}",
                got.code
            ));
        }
        let (g, r) = (
            normalize_stderr(&lab.fw, &got.stderr),
            normalize_stderr(&reference.fw, &refo.stderr),
        );
        if g != r {
            problems.push(format!(
                "`{args}`: stderr differs\n  want: {r:?}\n  got:  {g:?}"
            ));
        }
        if got.stdout != refo.stdout {
            problems.push(format!(
                "`{args}`: stdout differs\n  want: {:?}\n  got:  {:?}",
                refo.stdout, got.stdout
            ));
        }
        let after = lab.ipt(&host, "-S");
        if after.stdout != before || !after.success() {
            problems.push(format!("`{args}` changed the ruleset: -S now\n{after}"));
        }
    }
    if lab.listing(&host) != listing_before {
        problems.push(format!("-L -v -x -n changed:\n{}", lab.listing(&host)));
    }
    assert!(
        problems.is_empty(),
        "[{}]\n{}",
        lab.fw.label(),
        problems.join("\n")
    );
}

/// The four of issue 2: unknown option, bad address, bad port, rule not found.
fn errors_basic(fw: Fw) {
    compare_errors(
        fw,
        &[
            ("-A INPUT --bogus", 2),
            ("-A INPUT -s 1.2.3.999 -j DROP", 2),
            ("-A INPUT -p tcp --dport 99999 -j DROP", 2),
            ("-D INPUT -s 198.18.1.99 -j DROP", 1),
        ],
    );
}

/// More of the everyday mistakes.
fn errors_more(fw: Fw) {
    compare_errors(
        fw,
        &[
            ("-D INPUT 9", 1),
            ("-D INPUT 0", 2),
            ("-R INPUT 5 -j DROP", 1),
            ("-I INPUT 9 -j DROP", 1),
            ("-A NOSUCH -j DROP", 1),
            ("-L NOSUCH", 1),
            ("-P INPUT BOGUS", 1),
            ("-P FOO DROP", 1),
            ("-N INPUT", 1),
            ("-A INPUT -s 198.18.0.0/33 -j DROP", 2),
            ("-A INPUT -p bogus -j DROP", 2),
            ("-A INPUT --dport 80 -j DROP", 2),
            ("-A INPUT -p tcp --dport 20:10 -j DROP", 2),
            ("-A INPUT -p tcp --dport -j DROP", 2),
            ("-A INPUT -i eth0 -i eth1 -j DROP", 2),
            ("-A", 2),
            ("-A INPUT -s", 2),
            ("-A INPUT -j DROP extra", 2),
            ("-D INPUT -p tcp --dport 81 -j ACCEPT", 1),
        ],
    );
}
