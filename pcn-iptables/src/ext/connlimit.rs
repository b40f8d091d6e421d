//! libxt_connlimit (revision 1): `[!] --connlimit-upto n | [!] --connlimit-above n`,
//! `--connlimit-mask len`, `--connlimit-saddr | --connlimit-daddr`. The count itself:
//! `pcn_iptables_common::connlimit`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag};
use crate::error::Result;
use crate::model::{Connlimit, Match};
use crate::xtables::{param, plen, uint_option};

pub struct ConnlimitExt;

const O_UPTO: u8 = 0;
const O_ABOVE: u8 = 1;
const O_MASK: u8 = 2;
const O_SADDR: u8 = 3;
const O_DADDR: u8 = 4;

pub const ENTRIES: [Entry; 5] = [
    entry("connlimit-upto", O_UPTO, true, 1 << O_ABOVE),
    entry("connlimit-above", O_ABOVE, true, 1 << O_UPTO),
    entry("connlimit-mask", O_MASK, false, 0),
    Entry {
        excl: 1 << O_DADDR,
        ..flag("connlimit-saddr", O_SADDR)
    },
    Entry {
        excl: 1 << O_SADDR,
        ..flag("connlimit-daddr", O_DADDR)
    },
];

impl Extension for ConnlimitExt {
    fn name(&self) -> &'static str {
        "connlimit"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        // libxt_connlimit's init: the whole 128-bit mask set (another rule, to -C, than an
        // explicit `--connlimit-mask 32`).
        Value::Match(Match::Connlimit(Connlimit {
            prefix: Connlimit::PREFIX_ALL,
            ..Connlimit::default()
        }))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Connlimit(c) = v.as_match() else {
            unreachable!("a connlimit instance holds a connlimit match");
        };
        match id {
            O_UPTO | O_ABOVE => {
                let name = ENTRIES[id as usize].name;
                c.limit = uint_option("connlimit", name, arg, u32::MAX as u64)? as u32;
                // xt_connlimit matches when the count is above the limit, inverted.
                c.invert = (id == O_UPTO) != invert;
            }
            // A mask that is not one leaves libxtables' 128-bit mask all ones: shown as /32,
            // but another rule to `-C`.
            O_MASK => {
                c.prefix =
                    plen("connlimit", "connlimit-mask", arg)?.unwrap_or(Connlimit::PREFIX_ALL)
            }
            O_SADDR => c.daddr = false,
            _ => c.daddr = true,
        }
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & (1 << O_UPTO | 1 << O_ABOVE) == 0 {
            return Err(param(
                "You must specify \"--connlimit-above\" or \"--connlimit-upto\".",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Connlimit(c) = m else { return };
        let what = if c.invert { "upto" } else { "above" };
        let by = if c.daddr { "daddr" } else { "saddr" };
        let _ = write!(
            out,
            " --connlimit-{what} {} --connlimit-mask {} --connlimit-{by}",
            c.limit,
            c.prefix.min(32)
        );
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Connlimit(c) = m else { return };
        let by = if c.daddr { "dst" } else { "src" };
        let op = if c.invert { "<=" } else { ">" };
        let _ = write!(out, " #conn {by}/{} {op} {}", c.prefix.min(32), c.limit);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Connlimit(c), Field::Connlimit) => Some(Want::Connlimit(*c)),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }

    fn tracks(&self) -> bool {
        true
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "connlimit match options:\n",
    "  --connlimit-upto n     match if the number of existing connections is 0..n\n",
    "  --connlimit-above n    match if the number of existing connections is >n\n",
    "  --connlimit-mask n     group hosts using prefix length (default: max len)\n",
    "  --connlimit-saddr      select source address for grouping\n",
    "  --connlimit-daddr      select destination addresses for grouping\n",
);
