//! libxt_TOS (revision 1): `--set-tos value[/mask]` or a symbol, `--and-tos`, `--or-tos`,
//! `--xor-tos`, each a value and a mask as xt_DSCP's `tos_tg` applies them.

use std::fmt::Write as _;

use pcn_iptables_common::{Action, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry};
use super::tos::{SYMBOL_MASK, SYMBOLS, parse};
use crate::error::Result;
use crate::model::{Target, TosMask};
use crate::xtables::uint_option;

pub struct TosTarget;

const F_ANY: u32 = 0b1111;

pub const ENTRIES: [Entry; 4] = [
    entry("set-tos", 0, false, F_ANY),
    entry("and-tos", 1, false, F_ANY),
    entry("or-tos", 2, false, F_ANY),
    entry("xor-tos", 3, false, F_ANY),
];

impl Extension for TosTarget {
    fn name(&self) -> &'static str {
        "TOS"
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
        Value::Target(Target::Tos(TosMask::default()))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        let bits = || uint_option("TOS", ENTRIES[id as usize].name, arg, u8::MAX as u64);
        // libxt_TOS's tos_tg_parse.
        let (value, mask) = match id {
            0 => {
                let t = parse(arg)?;
                (t.value, t.mask)
            }
            1 => (0, !(bits()? as u8)),
            2 => {
                let b = bits()? as u8;
                (b, b)
            }
            _ => (bits()? as u8, 0),
        };
        *v.as_target() = Target::Tos(TosMask { value, mask });
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & F_ANY == 0 {
            return Err(crate::xtables::param("TOS: An action is required"));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Tos(t) = t else { return };
        let _ = write!(out, " --set-tos 0x{:02x}/0x{:02x}", t.value, t.mask);
    }

    fn print_target(&self, t: &Target, numeric: bool, out: &mut String) {
        let Target::Tos(TosMask { value, mask }) = *t else {
            return;
        };
        let symbol = SYMBOLS.iter().find(|(_, v)| *v == value);
        let _ = match (value, mask) {
            _ if numeric => write!(out, " TOS set 0x{value:02x}/0x{mask:02x}"),
            // libxt's tos_try_print_symbolic: " " and its prefix before the name.
            (_, SYMBOL_MASK) if symbol.is_some() => {
                write!(out, "  TOS set{}", symbol.map_or("", |(name, _)| name))
            }
            (0, mask) => write!(out, " TOS and 0x{:02x}", !mask),
            (value, mask) if value == mask => write!(out, " TOS or 0x{value:02x}"),
            (value, 0) => write!(out, " TOS xor 0x{value:02x}"),
            (value, mask) => write!(out, " TOS set 0x{value:02x}/0x{mask:02x}"),
        };
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Tos(t) = t else {
            unreachable!("TOS's target")
        };
        (action.set_mark, action.set_mark_mask) = (t.value as u32, t.mask as u32);
        verdict::TOS
    }
}

/// libxt's help text (revision 1; XTABLES_VERSION is libxtables' soname in Debian's build).
pub const HELP: &str = concat!(
    "\n",
    "TOS target vlibxtables.so.12 options:\n",
    "  --set-tos value[/mask]  Set Type of Service/Priority field to value\n",
    "                          (Zero out bits in mask and XOR value into TOS)\n",
    "  --set-tos symbol        Set TOS field (IPv4 only) by symbol\n",
    "                          (this zeroes the 4-bit Precedence part!)\n",
    "                          Accepted symbolic names for value are:\n",
    "                            (0x10) 16 Minimize-Delay\n",
    "                            (0x08)  8 Maximize-Throughput\n",
    "                            (0x04)  4 Maximize-Reliability\n",
    "                            (0x02)  2 Minimize-Cost\n",
    "                            (0x00)  0 Normal-Service\n",
    "\n",
    "  --and-tos bits          Binary AND the TOS value with bits\n",
    "  --or-tos  bits          Binary OR the TOS value with bits\n",
    "  --xor-tos bits          Binary XOR the TOS value with bits\n",
);
