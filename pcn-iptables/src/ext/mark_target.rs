//! libxt_MARK (revision 2): `--set-xmark`, `--set-mark`, `--and-mark`, `--or-mark`,
//! `--xor-mark`, each a value and a mask as xt_MARK applies them.

use std::fmt::Write as _;

use pcn_iptables_common::{Action, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry};
use crate::error::Result;
use crate::model::{MarkMask, Target};
use crate::xtables::{markmask, param, value::xtables_uint};

pub struct MarkTarget;

const F_ALL: u32 = 0b11111;

pub const ENTRIES: [Entry; 5] = [
    entry("set-xmark", 0, false, F_ALL),
    entry("set-mark", 1, false, F_ALL),
    entry("and-mark", 2, false, F_ALL),
    entry("or-mark", 3, false, F_ALL),
    entry("xor-mark", 4, false, F_ALL),
];

impl Extension for MarkTarget {
    fn name(&self) -> &'static str {
        "MARK"
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
        Value::Target(Target::Mark(MarkMask::default()))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        let name = ENTRIES[id as usize].name;
        let bits = || {
            xtables_uint(arg, 0, u32::MAX as u64)
                .map(|b| b as u32)
                .ok_or_else(|| {
                    param(format!(
                        "MARK: bad value for option \"--{name}\", or out of range (0-4294967295).\n"
                    ))
                })
        };
        // libxt_MARK's mark_tg_parse: every option as xt_MARK's value and mask.
        let (value, mask) = match id {
            0 => markmask("MARK", name, arg)?,
            1 => {
                let (value, mask) = markmask("MARK", name, arg)?;
                (value, value | mask)
            }
            2 => (0, !bits()?),
            3 => {
                let b = bits()?;
                (b, b)
            }
            _ => (bits()?, 0),
        };
        *v.as_target() = Target::Mark(MarkMask { value, mask });
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & F_ALL == 0 {
            return Err(param(
                "MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required",
            ));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Mark(m) = t else { return };
        let _ = write!(out, " --set-xmark 0x{:x}/0x{:x}", m.value, m.mask);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let Target::Mark(m) = t else { return };
        let _ = match (m.value, m.mask) {
            (0, mask) => write!(out, " MARK and 0x{:x}", !mask),
            (value, mask) if value == mask => write!(out, " MARK or 0x{value:x}"),
            (value, 0) => write!(out, " MARK xor 0x{value:x}"),
            (value, u32::MAX) => write!(out, " MARK set 0x{value:x}"),
            (value, mask) => write!(out, " MARK xset 0x{value:x}/0x{mask:x}"),
        };
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Mark(m) = t else {
            unreachable!("MARK's target")
        };
        (action.set_mark, action.set_mark_mask) = (m.value, m.mask);
        verdict::MARK
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "MARK target options:\n",
    "  --set-xmark value[/mask]  Clear bits in mask and XOR value into nfmark\n",
    "  --set-mark value[/mask]   Clear bits in mask and OR value into nfmark\n",
    "  --and-mark bits           Binary AND the nfmark with bits\n",
    "  --or-mark bits            Binary OR the nfmark with bits\n",
    "  --xor-mark bits           Binary XOR the nfmark with bits\n",
);
