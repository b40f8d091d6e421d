//! libxt_DSCP: `--set-dscp value` or `--set-dscp-class name`: the TOS byte's upper six bits,
//! its ECN bits kept (xt_DSCP's `dscp_tg`).

use std::fmt::Write as _;

use pcn_iptables_common::{Action, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry};
use super::dscp::{MAX, class};
use crate::error::Result;
use crate::model::Target;
use crate::xtables::{param, uint_option};

pub struct DscpTarget;

pub const ENTRIES: [Entry; 2] = [
    entry("set-dscp", 0, false, 1 << 1),
    entry("set-dscp-class", 1, false, 1),
];

impl Extension for DscpTarget {
    fn name(&self) -> &'static str {
        "DSCP"
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
        Value::Target(Target::Dscp(0))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        let dscp = match id {
            0 => uint_option("DSCP", "set-dscp", arg, MAX)? as u8,
            _ => class(arg)?,
        };
        *v.as_target() = Target::Dscp(dscp);
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("DSCP target: Parameter --set-dscp is required"));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Dscp(d) = t else { return };
        let _ = write!(out, " --set-dscp 0x{d:02x}");
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let Target::Dscp(d) = t else { return };
        let _ = write!(out, " DSCP set 0x{d:02x}");
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Dscp(d) = t else {
            unreachable!("DSCP's target")
        };
        // The six upper bits of the TOS byte, as a TOS target's value and mask.
        (action.set_mark, action.set_mark_mask) = ((*d as u32) << 2, 0xfc);
        verdict::TOS
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "DSCP target options\n",
    "  --set-dscp value\t\tSet DSCP field in packet header to value\n",
    "  \t\t                This value can be in decimal (ex: 32)\n",
    "               \t\tor in hex (ex: 0x20)\n",
    "  --set-dscp-class class\tSet the DSCP field in packet header to the\n",
    "\t\t\t\tvalue represented by the DiffServ class value.\n",
    "\t\t\t\tThis class may be EF,BE or any of the CSxx\n",
    "\t\t\t\tor AFxx classes.\n",
    "\n",
    "\t\t\t\tThese two options are mutually exclusive !\n",
);
