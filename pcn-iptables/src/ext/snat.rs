//! libxt_NAT's SNAT: `--to-source ADDR[-ADDR][:PORT[-PORT]]`, `--random`, `--random-fully`,
//! `--persistent`.

use super::api::{Entry, flag, mandatory};
use super::nat::{self, NatTarget, O_PERSISTENT, O_RANDOM, O_RANDOM_FULLY, O_TO_SRC};
use crate::model::NatKind;

pub const SNAT: NatTarget = NatTarget {
    name: "SNAT",
    kind: NatKind::Snat,
    entries: &ENTRIES,
    help: HELP,
    save: "--to-source ",
    list: "to:",
    ports_only: false,
    check: nat::refuse_offset,
};

pub const ENTRIES: [Entry; 4] = [
    mandatory("to-source", O_TO_SRC, false),
    flag("random", O_RANDOM),
    flag("random-fully", O_RANDOM_FULLY),
    flag("persistent", O_PERSISTENT),
];

/// libxt_NAT's help text.
pub const HELP: &str = concat!(
    "\n",
    "SNAT target options:\n",
    " --to-source [<ipaddr>[-<ipaddr>]][:port[-port]]\n",
    "\t\t\t\tAddress to map source to.\n",
    "[--random] [--random-fully] [--persistent]\n",
);
