//! libxt_NAT's MASQUERADE: `--to-ports PORT[-PORT]`, `--random`, `--random-fully`.

use pcn_iptables_common::Action;

use super::api::{Context, Entry, Extension, Kind, Value, entry, flag};
use super::nat::{self, O_RANDOM, O_RANDOM_FULLY, O_TO_PORTS};
use crate::error::Result;
use crate::model::{NatKind, Target};

pub struct Masquerade;

impl Extension for Masquerade {
    fn name(&self) -> &'static str {
        "MASQUERADE"
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Target(nat::init(NatKind::Masquerade))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        nat::parse(v.as_target(), id, arg, cx)
    }

    fn check(&self, _: u32, v: &Value) -> Result<()> {
        let Value::Target(t) = v else { return Ok(()) };
        nat::refuse_offset(t)
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        nat::print(t, "--to-ports ", "--", true, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        nat::print(t, "masq ports: ", "", true, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        nat::action(t, action)
    }
}

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
