//! libxt_NAT's DNAT (revision 2, which iptables-legacy uses on Linux 4.19 and later):
//! `--to-destination [ADDR[-ADDR]][:PORT[-PORT]]`, `--random`, `--persistent`.

use pcn_iptables_common::Action;

use super::api::{Context, Entry, Extension, Kind, Value, flag, mandatory};
use super::nat::{self, O_PERSISTENT, O_RANDOM, O_TO_DEST};
use crate::error::Result;
use crate::model::{NatKind, Target};

pub struct Dnat;

impl Extension for Dnat {
    fn name(&self) -> &'static str {
        "DNAT"
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
        Value::Target(nat::init(NatKind::Dnat))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        nat::parse(v.as_target(), id, arg, cx)
    }

    fn check(&self, _: u32, v: &Value) -> Result<()> {
        let Value::Target(t) = v else { return Ok(()) };
        nat::refuse_offset(t)
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        nat::print(t, "--to-destination ", "--", false, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        nat::print(t, "to:", "", false, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        nat::action(t, action)
    }
}

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
