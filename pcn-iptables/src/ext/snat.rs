//! libxt_NAT's SNAT: `--to-source ADDR[-ADDR][:PORT[-PORT]]`, `--random`, `--random-fully`,
//! `--persistent`.

use pcn_iptables_common::Action;

use super::api::{Context, Entry, Extension, Kind, Value, flag, mandatory};
use super::nat::{self, O_PERSISTENT, O_RANDOM, O_RANDOM_FULLY, O_TO_SRC};
use crate::error::Result;
use crate::model::{NatKind, Target};

pub struct Snat;

impl Extension for Snat {
    fn name(&self) -> &'static str {
        "SNAT"
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
        Value::Target(nat::init(NatKind::Snat))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        nat::parse(v.as_target(), id, arg, cx)
    }

    fn check(&self, _: u32, v: &Value) -> Result<()> {
        let Value::Target(t) = v else { return Ok(()) };
        nat::refuse_offset(t)
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        nat::print(t, "--to-source ", "--", false, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        nat::print(t, "to:", "", false, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        nat::action(t, action)
    }
}

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
