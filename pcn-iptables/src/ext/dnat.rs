//! libxt_NAT's DNAT (revision 2, which iptables-legacy uses on Linux 4.19 and later):
//! `--to-destination [ADDR[-ADDR]][:PORT[-PORT]]`, `--random`, `--persistent`.

use super::api::{Entry, flag, mandatory};
use super::nat::{self, NatTarget, O_PERSISTENT, O_RANDOM, O_TO_DEST};
use crate::model::NatKind;

pub const DNAT: NatTarget = NatTarget {
    name: "DNAT",
    kind: NatKind::Dnat,
    entries: &ENTRIES,
    help: HELP,
    save: "--to-destination ",
    list: "to:",
    ports_only: false,
    check: nat::refuse_offset,
};

pub const ENTRIES: [Entry; 3] = [
    mandatory("to-destination", O_TO_DEST, false),
    flag("random", O_RANDOM),
    flag("persistent", O_PERSISTENT),
];

/// libxt_NAT's help text (`DNAT_help_v2`).
pub const HELP: &str = concat!(
    "\n",
    "DNAT target options:\n",
    " --to-destination [<ipaddr>[-<ipaddr>]][:port[-port[/port]]]\n",
    "\t\t\t\tAddress to map destination to.\n",
    "[--random] [--persistent]\n",
);
