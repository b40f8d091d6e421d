//! libxt_NAT's REDIRECT: `--to-ports PORT[-PORT]`, `--random`.

use super::api::{Entry, entry, flag};
use super::nat::{NatTarget, O_RANDOM, O_TO_PORTS, PROTO_OFFSET};
use crate::error::Result;
use crate::model::{NatKind, Target};
use crate::xtables::param;

pub const REDIRECT: NatTarget = NatTarget {
    name: "REDIRECT",
    kind: NatKind::Redirect,
    entries: &ENTRIES,
    help: HELP,
    save: "--to-ports ",
    list: "redir ports ",
    ports_only: true,
    check,
};

/// `DNAT_fcheck`: revision 0 has no shifted port ranges.
fn check(t: &Target) -> Result<()> {
    match t {
        Target::Nat(n) if n.flags & PROTO_OFFSET != 0 => Err(param(
            "Shifted portmap ranges not supported with this kernel",
        )),
        _ => Ok(()),
    }
}

pub const ENTRIES: [Entry; 2] = [
    entry("to-ports", O_TO_PORTS, false, 0),
    flag("random", O_RANDOM),
];

/// libxt_NAT's help text.
pub const HELP: &str = concat!(
    "\n",
    "REDIRECT target options:\n",
    " --to-ports <port>[-<port>]\n",
    "\t\t\t\tPort (range) to map to.\n",
    " [--random]\n",
);
