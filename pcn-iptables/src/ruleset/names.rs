//! Names libiptc answers with: its error for a missing chain, a target's name.

use crate::error::{Error, OTHER_PROBLEM};
use crate::model::{NatKind, Target};

/// libiptc's answer for a chain that does not exist.
pub(crate) fn no_chain() -> Error {
    Error::plain(OTHER_PROBLEM, "No chain/target/match by that name")
}

/// The name iptables shows for a target: the verdict, or the chain jumped to.
pub(crate) fn target_name(target: &Target) -> &str {
    match target {
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Jump(chain) | Target::Goto(chain) => chain,
        Target::Reject(_) => "REJECT",
        Target::Log(_) => "LOG",
        Target::Mark(_) => "MARK",
        Target::Connmark(_) => "CONNMARK",
        Target::Nat(nat) => match nat.kind {
            NatKind::Snat => "SNAT",
            NatKind::Dnat => "DNAT",
            NatKind::Masquerade => "MASQUERADE",
            NatKind::Redirect => "REDIRECT",
            NatKind::Netmap => "NETMAP",
        },
    }
}
