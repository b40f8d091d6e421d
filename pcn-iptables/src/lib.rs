//! pcn-iptables: iptables' command line, with the filtering done in eBPF.
//!
//! Imports run one way: `model` ← `xtables` ← `ext` ← `syntax`, `ruleset`, `listing` ←
//! `compile` ← `dataplane` ← `engine` ← `cli` (see the README's design section). Data flows from argv
//! through `syntax` → `ruleset` → `compile` → `dataplane`; `listing` prints `-L`.

pub mod cli;
pub mod compile;
pub mod dataplane;
pub mod engine;
pub mod error;
pub mod ext;
pub mod listing;
pub mod model;
pub mod ruleset;
pub mod syntax;
pub mod xtables;

/// The iptables release whose behaviour and messages we reproduce.
pub const IPTABLES_VERSION: &str = "1.8.9";

#[cfg(test)]
mod tests {
    /// gcc's unwinder, linked statically (build.rs), unwinds panics and walks the stack.
    #[test]
    fn panics_unwind_with_the_static_unwinder() {
        assert!(std::panic::catch_unwind(|| panic!("unwinding")).is_err());
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        assert!(
            trace.contains("panics_unwind_with_the_static_unwinder"),
            "{trace}"
        );
    }
}
