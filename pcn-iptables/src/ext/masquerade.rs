//! libxt_NAT's MASQUERADE: `--to-ports PORT[-PORT]`, `--random`, `--random-fully`.

use super::api::{Entry, entry, flag};
use super::nat::{self, NatTarget, O_RANDOM, O_RANDOM_FULLY, O_TO_PORTS};
use crate::model::NatKind;

pub const MASQUERADE: NatTarget = NatTarget {
    name: "MASQUERADE",
    kind: NatKind::Masquerade,
    entries: &ENTRIES,
    help: HELP,
    save: "--to-ports ",
    list: "masq ports: ",
    ports_only: true,
    check: nat::refuse_offset,
};

pub const ENTRIES: [Entry; 3] = [
    entry("to-ports", O_TO_PORTS, false, 0),
    flag("random", O_RANDOM),
    flag("random-fully", O_RANDOM_FULLY),
];

/// libxt_NAT's help text.
pub const HELP: &str = concat!(
    "\n",
    "MASQUERADE target options:\n",
    " --to-ports <port>[-<port>]\n",
    "\t\t\t\tPort (range) to map to.\n",
    " --random\n",
    "\t\t\t\tRandomize source port.\n",
    " --random-fully\n",
    "\t\t\t\tFully randomize source port.\n",
);
