//! Names libiptc answers with: its error for a missing chain, a target's name.

use crate::error::{Error, OTHER_PROBLEM};
use crate::model::Target;

/// libiptc's answer for a chain that does not exist.
pub(crate) fn no_chain() -> Error {
    Error::plain(OTHER_PROBLEM, "No chain/target/match by that name")
}

/// The name iptables shows for a target: the verdict, the chain jumped to, or the extension.
pub(crate) fn target_name(target: &Target) -> &str {
    match target {
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Jump(chain) | Target::Goto(chain) => chain,
        t => crate::ext::of_target(t).map_or("", |e| e.name()),
    }
}

/// The name `-L` shows for a target: the kernel's (`-j NOTRACK` is CT there).
pub(crate) fn kernel_target_name(target: &Target) -> &str {
    match target {
        Target::Ct(_) => "CT",
        t => target_name(t),
    }
}
