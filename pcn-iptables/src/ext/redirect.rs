//! libxt_NAT's REDIRECT: `--to-ports PORT[-PORT]`, `--random`.

use pcn_iptables_common::Action;

use super::api::{Context, Entry, Extension, Kind, Value, entry, flag};
use super::nat::{self, O_RANDOM, O_TO_PORTS, PROTO_OFFSET};
use crate::error::Result;
use crate::model::{NatKind, Target};
use crate::xtables::param;

pub struct Redirect;

impl Extension for Redirect {
    fn name(&self) -> &'static str {
        "REDIRECT"
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
        Value::Target(nat::init(NatKind::Redirect))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        nat::parse(v.as_target(), id, arg, cx)
    }

    /// `DNAT_fcheck`: revision 0 has no shifted port ranges.
    fn check(&self, _: u32, v: &Value) -> Result<()> {
        match v {
            Value::Target(Target::Nat(n)) if n.flags & PROTO_OFFSET != 0 => Err(param(
                "Shifted portmap ranges not supported with this kernel",
            )),
            _ => Ok(()),
        }
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        nat::print(t, "--to-ports ", "--", true, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        nat::print(t, "redir ports ", "", true, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        nat::action(t, action)
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
