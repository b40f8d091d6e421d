//! libipt_TTL: `--ttl-set`, `--ttl-dec`, `--ttl-inc` (xt_TTL's modes; the TTL stays within
//! 0..=255).

use std::fmt::Write as _;

use pcn_iptables_common::{Action, rewrite, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry};
use crate::error::Result;
use crate::model::{Target, TtlSet};
use crate::xtables::{param, value::xtables_uint};

pub struct TtlTarget;

const F_ANY: u32 = 0b111;

/// In `rewrite::TTL_*` order.
pub const ENTRIES: [Entry; 3] = [
    entry("ttl-set", 0, false, F_ANY),
    entry("ttl-inc", 1, false, F_ANY),
    entry("ttl-dec", 2, false, F_ANY),
];

impl Extension for TtlTarget {
    fn name(&self) -> &'static str {
        "TTL"
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
        Value::Target(Target::Ttl(TtlSet::default()))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        // --ttl-inc and --ttl-dec take 1 at least.
        let min = (id != rewrite::TTL_SET) as u64;
        let value = xtables_uint(arg, min, u8::MAX as u64).ok_or_else(|| {
            param(format!(
                "TTL: bad value for option \"--{}\", or out of range ({min}-255).\n",
                ENTRIES[id as usize].name
            ))
        })?;
        *v.as_target() = Target::Ttl(TtlSet {
            mode: id,
            value: value as u8,
        });
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & F_ANY == 0 {
            return Err(param("TTL: You must specify an action"));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Ttl(t) = t else { return };
        let _ = write!(out, " --{} {}", ENTRIES[t.mode as usize].name, t.value);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let Target::Ttl(t) = t else { return };
        let what = ["set to", "increment by", "decrement by"][t.mode as usize];
        let _ = write!(out, " TTL {what} {}", t.value);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Ttl(t) = t else {
            unreachable!("TTL's target")
        };
        (action.set_mark, action.set_mark_mask) = (t.value as u32, t.mode as u32);
        verdict::TTL
    }
}

/// libipt_TTL's help text.
pub const HELP: &str = concat!(
    "\n",
    "TTL target options\n",
    "  --ttl-set value\t\tSet TTL to <value 0-255>\n",
    "  --ttl-dec value\t\tDecrement TTL by <value 1-255>\n",
    "  --ttl-inc value\t\tIncrement TTL by <value 1-255>\n",
);
