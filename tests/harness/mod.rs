//! Shared harness for the pcn-iptables integration tests.
//!
//! Every test builds a [`Lab`]: a set of throwaway network namespaces (`pcnt-<pid>-<n>`) joined
//! by veth pairs, with addresses only in 198.18.0.0/15. The firewall under test, a [`Fw`], is
//! either Debian's `iptables-legacy` (the reference) or `pcn-iptables`; it only ever runs as
//! `ip netns exec NS <binary> -w ...`, so the host's own interfaces and rules are never touched.
//! Dropping the lab (also while unwinding from a failed assertion) stops the test servers, runs
//! `pcn-iptables --uninstall` in every namespace where pcn-iptables was used, and deletes every
//! namespace the lab made.
//!
//! Packets are real: `ping` through `ip netns exec`, TCP connects and UDP request/echo from Rust
//! sockets created by a thread that has `setns(CLONE_NEWNET)`-ed into the namespace.
//!
//! Scenarios are plain functions taking a [`Fw`]; [`scenarios!`] turns each into a module with a
//! `legacy` and a `pcn` test, so `cargo test -- legacy` runs the reference runs only.

pub mod cmd;
pub mod datagrams;
pub mod diff;
pub mod fw;
pub mod gateway;
pub mod kernel;
pub mod lab;
pub mod listing;
pub mod restore;
pub mod topo;
pub mod traffic;
pub mod whoami;

pub use Verdict::{Drop, Pass};
pub use cmd::Out;
pub use diff::{Transcript, differential};
pub use fw::{Fw, Kind};
pub use lab::{Lab, Ns};
pub use listing::{ListedChain, ListedRule, Listing};
pub use topo::{Pair, Routed};
pub use traffic::{Flow, Verdict};

/// Generates, for each scenario function `name(fw: Fw)`, a module `name` with two tests:
/// `name::legacy` (the reference, iptables-legacy) and `name::pcn` (pcn-iptables).
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn legacy() {
                super::$name($crate::Fw::legacy())
            }
            #[test]
            fn pcn() {
                super::$name($crate::Fw::pcn())
            }
        }
    )*};
}

/// For scenarios that return a [`Transcript`]: `name::legacy` and `name::pcn` check the
/// scenario's own expectations (and `check(&transcript)` when given as `name => check`),
/// `name::diff_pcn` runs both side by side and demands the same verdicts and outputs.
#[macro_export]
macro_rules! differential_scenarios {
    ($($name:ident $(=> $check:ident)?),* $(,)?) => {$(
        mod $name {
            use $crate::Fw;
            #[test]
            fn legacy() {
                let t = super::$name(Fw::legacy());
                t.assert_expected();
                $(super::$check(&t);)?
            }
            #[test]
            fn pcn() {
                let t = super::$name(Fw::pcn());
                t.assert_expected();
                $(super::$check(&t);)?
            }
            #[test]
            fn diff_pcn() {
                $crate::differential(Fw::legacy(), Fw::pcn(), super::$name);
            }
        }
    )*};
}
