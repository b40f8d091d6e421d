//! libxt_CT: `-j CT [--notrack]` and its alias `-j NOTRACK` (the raw table's; the kernel
//! checks the table). The zone, helper, timeout and event options are not supported.

use pcn_iptables_common::{Action, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, flag};
use crate::error::Result;
use crate::model::{CtTarget, Target};
use crate::xtables::unsupported;

pub struct Ct;
pub struct Notrack;

const O_NOTRACK: u8 = 0;

/// libxt_CT's revision 2 options, `--notrack` the one taken.
pub const ENTRIES: [Entry; 8] = [
    flag("notrack", O_NOTRACK),
    super::api::entry("helper", 1, false, 0),
    super::api::entry("timeout", 2, false, 0),
    super::api::entry("ctevents", 3, false, 0),
    super::api::entry("expevents", 4, false, 0),
    super::api::entry("zone", 5, false, 0),
    super::api::entry("zone-orig", 6, false, 0),
    super::api::entry("zone-reply", 7, false, 0),
];

/// What either name does: the packet is not tracked, or (CT without options) nothing.
fn action(t: &Target) -> u32 {
    match t {
        Target::Ct(CtTarget { notrack: true, .. }) => verdict::NOTRACK,
        _ => verdict::CONTINUE,
    }
}

impl Extension for Ct {
    fn name(&self) -> &'static str {
        "CT"
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
        Value::Target(Target::Ct(CtTarget::default()))
    }

    fn parse(&self, v: &mut Value, id: u8, _: &str, _: bool, _: &mut Context) -> Result<()> {
        if id != O_NOTRACK {
            let option = ENTRIES[id as usize].name;
            return Err(unsupported(format_args!("-j CT --{option}")));
        }
        *v.as_target() = Target::Ct(CtTarget {
            notrack: true,
            alias: false,
        });
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        if matches!(t, Target::Ct(CtTarget { notrack: true, .. })) {
            out.push_str(" --notrack");
        }
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        out.push_str(" CT");
        if matches!(t, Target::Ct(CtTarget { notrack: true, .. })) {
            out.push_str(" notrack");
        }
    }

    fn action(&self, t: &Target, _: &mut Action) -> u32 {
        action(t)
    }
}

impl Extension for Notrack {
    fn name(&self) -> &'static str {
        "NOTRACK"
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        "\nNOTRACK does not take any options\n"
    }

    fn init(&self) -> Value {
        Value::Target(Target::Ct(CtTarget {
            notrack: true,
            alias: true,
        }))
    }

    fn parse(&self, _: &mut Value, _: u8, _: &str, _: bool, _: &mut Context) -> Result<()> {
        unreachable!("NOTRACK has no options")
    }

    fn print_target(&self, _: &Target, _: bool, out: &mut String) {
        out.push_str(" NOTRACK");
    }

    fn action(&self, t: &Target, _: &mut Action) -> u32 {
        action(t)
    }
}

/// libxt's help text (revision 2).
pub const HELP: &str = concat!(
    "\n",
    "CT target options:\n",
    " --notrack\t\t\tDon't track connection\n",
    " --helper name\t\t\tUse conntrack helper 'name' for connection\n",
    " --timeout name \t\tUse timeout policy 'name' for connection\n",
    " --ctevents event[,event...]\tGenerate specified conntrack events for connection\n",
    " --expevents event[,event...]\tGenerate specified expectation events for connection\n",
    " --zone {ID|mark}\t\tAssign/Lookup connection in zone ID/packet nfmark\n",
    " --zone-orig {ID|mark}\t\tSame as 'zone' option, but only applies to ORIGINAL direction\n",
    " --zone-reply {ID|mark} \tSame as 'zone' option, but only applies to REPLY direction\n",
);
