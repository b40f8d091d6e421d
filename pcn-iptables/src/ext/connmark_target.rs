//! libxt_CONNMARK (revision 2): `--set-xmark`, `--set-mark`, `--and-mark`, `--or-mark`,
//! `--xor-mark` (the connection's mark), `--save-mark`, `--restore-mark` (between it and the
//! packet's), with `--ctmask`, `--nfmask` or `--mask`, and `--left-shift-mark` or
//! `--right-shift-mark`.

use std::fmt::Write as _;

use pcn_iptables_common::{Action, conntrack::connmark_mode, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry, flag};
use crate::error::Result;
use crate::model::{Connmark, Target};
use crate::xtables::{markmask, param, value::xtables_uint};

pub struct ConnmarkTarget;

const O_SET_MARK: u8 = 0;
const O_SAVE_MARK: u8 = 1;
const O_RESTORE_MARK: u8 = 2;
const O_AND_MARK: u8 = 3;
const O_OR_MARK: u8 = 4;
const O_XOR_MARK: u8 = 5;
const O_LEFT_SHIFT_MARK: u8 = 6;
const O_RIGHT_SHIFT_MARK: u8 = 7;
const O_SET_XMARK: u8 = 8;
const O_CTMASK: u8 = 9;
const O_NFMASK: u8 = 10;
const O_MASK: u8 = 11;
const F_OP_ANY: u32 = 1 << O_SET_MARK
    | 1 << O_SAVE_MARK
    | 1 << O_RESTORE_MARK
    | 1 << O_AND_MARK
    | 1 << O_OR_MARK
    | 1 << O_XOR_MARK
    | 1 << O_SET_XMARK;
const F_MASK: u32 = 1 << O_MASK;

/// An operation: it excludes the others.
const fn op(name: &'static str, id: u8) -> Entry {
    entry(name, id, false, F_OP_ANY)
}

const fn op_flag(name: &'static str, id: u8) -> Entry {
    Entry {
        excl: F_OP_ANY,
        ..flag(name, id)
    }
}

pub const ENTRIES: [Entry; 12] = [
    op("set-xmark", O_SET_XMARK),
    op("set-mark", O_SET_MARK),
    op("and-mark", O_AND_MARK),
    op("or-mark", O_OR_MARK),
    op("xor-mark", O_XOR_MARK),
    op_flag("save-mark", O_SAVE_MARK),
    op_flag("restore-mark", O_RESTORE_MARK),
    entry("left-shift-mark", O_LEFT_SHIFT_MARK, false, 0),
    entry("right-shift-mark", O_RIGHT_SHIFT_MARK, false, 0),
    entry("ctmask", O_CTMASK, false, F_MASK),
    entry("nfmask", O_NFMASK, false, F_MASK),
    entry("mask", O_MASK, false, 1 << O_CTMASK | 1 << O_NFMASK),
];

impl Extension for ConnmarkTarget {
    fn name(&self) -> &'static str {
        "CONNMARK"
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
        Value::Target(Target::Connmark(Connmark {
            ctmask: u32::MAX,
            nfmask: u32::MAX,
            ..Connmark::default()
        }))
    }

    /// libxt_CONNMARK's `connmark_tg_parse_v2`.
    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        let Target::Connmark(c) = v.as_target() else {
            unreachable!("a CONNMARK instance holds CONNMARK");
        };
        let name = ENTRIES.iter().find(|e| e.id == id).map_or("", |e| e.name);
        let uint = |max: u64| {
            xtables_uint(arg, 0, max).ok_or_else(|| {
                param(format!(
                    "CONNMARK: bad value for option \"--{name}\", or out of range (0-{max}).\n"
                ))
            })
        };
        match id {
            O_SET_XMARK | O_SET_MARK => {
                let (mark, mask) = markmask("CONNMARK", name, arg)?;
                c.mode = connmark_mode::SET;
                c.ctmark = mark;
                c.ctmask = if id == O_SET_MARK { mark | mask } else { mask };
            }
            O_AND_MARK | O_OR_MARK | O_XOR_MARK => {
                let bits = uint(u32::MAX as u64)? as u32;
                c.mode = connmark_mode::SET;
                (c.ctmark, c.ctmask) = match id {
                    O_AND_MARK => (0, !bits),
                    O_OR_MARK => (bits, bits),
                    _ => (bits, 0),
                };
            }
            O_SAVE_MARK => c.mode = connmark_mode::SAVE,
            O_RESTORE_MARK => c.mode = connmark_mode::RESTORE,
            O_LEFT_SHIFT_MARK | O_RIGHT_SHIFT_MARK => {
                c.shift_right = id == O_RIGHT_SHIFT_MARK;
                c.shift_bits = uint(32)? as u8;
            }
            O_CTMASK => c.ctmask = uint(u32::MAX as u64)? as u32,
            O_NFMASK => c.nfmask = uint(u32::MAX as u64)? as u32,
            _ => {
                let mask = uint(u32::MAX as u64)? as u32;
                (c.ctmask, c.nfmask) = (mask, mask);
            }
        }
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & F_OP_ANY == 0 {
            return Err(param("CONNMARK target: No operation specified"));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Connmark(c) = t else { return };
        let _ = match c.mode {
            connmark_mode::SET => write!(out, " --set-xmark 0x{:x}/0x{:x}", c.ctmark, c.ctmask),
            connmark_mode::SAVE => write!(
                out,
                " --save-mark --nfmask 0x{:x} --ctmask 0x{:x}",
                c.nfmask, c.ctmask
            ),
            _ => write!(
                out,
                " --restore-mark --nfmask 0x{:x} --ctmask 0x{:x}",
                c.nfmask, c.ctmask
            ),
        };
        if c.shift_bits != 0 {
            let _ = write!(out, " --{} {}", shift_op(c), c.shift_bits);
        }
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let Target::Connmark(c) = t else { return };
        let all = u32::MAX;
        let _ = match (c.mode, c.ctmark, c.ctmask, c.nfmask) {
            (connmark_mode::SET, 0, ctmask, _) => write!(out, " CONNMARK and 0x{:x}", !ctmask),
            (connmark_mode::SET, m, k, _) if m == k => write!(out, " CONNMARK or 0x{m:x}"),
            (connmark_mode::SET, m, 0, _) => write!(out, " CONNMARK xor 0x{m:x}"),
            (connmark_mode::SET, m, k, _) if k == all => write!(out, " CONNMARK set 0x{m:x}"),
            (connmark_mode::SET, m, k, _) => write!(out, " CONNMARK xset 0x{m:x}/0x{k:x}"),
            (connmark_mode::SAVE, _, ct, nf) if ct == all && nf == all => {
                write!(out, " CONNMARK save")
            }
            (connmark_mode::SAVE, _, ct, nf) if ct == nf => {
                write!(out, " CONNMARK save mask 0x{nf:x}")
            }
            (connmark_mode::SAVE, _, ct, nf) => {
                write!(out, " CONNMARK save nfmask 0x{nf:x} ctmask ~0x{ct:x}")
            }
            (_, _, ct, nf) if ct == all && nf == all => write!(out, " CONNMARK restore"),
            (_, _, ct, nf) if ct == nf => write!(out, " CONNMARK restore mask 0x{ct:x}"),
            (_, _, ct, nf) => write!(out, " CONNMARK restore ctmask 0x{ct:x} nfmask ~0x{nf:x}"),
        };
        if c.shift_bits != 0 {
            let _ = write!(out, " {} {}", shift_op(c), c.shift_bits);
        }
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Connmark(c) = t else {
            unreachable!("CONNMARK's target")
        };
        action.connmark_mode = c.mode;
        action.connmark_shift = c.shift_bits
            | if c.shift_right {
                connmark_mode::SHIFT_RIGHT
            } else {
                0
            };
        (action.set_mark, action.set_mark_mask) = (c.ctmark, c.ctmask);
        action.nfmask = c.nfmask;
        verdict::CONNMARK
    }

    fn tracks(&self) -> bool {
        true
    }
}

fn shift_op(c: &Connmark) -> &'static str {
    if c.shift_right {
        "right-shift-mark"
    } else {
        "left-shift-mark"
    }
}

/// Whether xt_CONNMARK takes the target (else the kernel says EINVAL): a shift below 32.
pub fn kernel_accepts(c: &Connmark) -> bool {
    c.shift_bits < 32
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "CONNMARK target options:\n",
    "  --set-xmark value[/ctmask]    Zero mask bits and XOR ctmark with value\n",
    "  --save-mark [--ctmask mask] [--nfmask mask]\n",
    "                                Copy ctmark to nfmark using masks\n",
    "  --restore-mark [--ctmask mask] [--nfmask mask]\n",
    "                                Copy nfmark to ctmark using masks\n",
    "  --set-mark value[/mask]       Set conntrack mark value\n",
    "  --save-mark [--mask mask]     Save the packet nfmark in the connection\n",
    "  --restore-mark [--mask mask]  Restore saved nfmark value\n",
    "  --and-mark value              Binary AND the ctmark with bits\n",
    "  --or-mark value               Binary OR  the ctmark with bits\n",
    "  --xor-mark value              Binary XOR the ctmark with bits\n",
    "  --left-shift-mark value       Left shift the ctmark with bits\n",
    "  --right-shift-mark value      Right shift the ctmark with bits\n",
);
