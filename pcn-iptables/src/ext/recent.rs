//! libxt_recent: `[!] --set | --rcheck | --update | --remove`, `--seconds`, `--reap`,
//! `--hitcount`, `--rttl`, `--name`, `--rsource | --rdest`, `--mask`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use pcn_iptables_common::recent::op;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag};
use crate::error::Result;
use crate::model::{Match, Recent};
use crate::xtables::{HasArg, host_address, param, truncate, value::xtables_uint};

pub struct RecentExt;

const O_SET: u8 = 0;
const O_RCHECK: u8 = 1;
const O_UPDATE: u8 = 2;
const O_REMOVE: u8 = 3;
const O_SECONDS: u8 = 4;
const O_REAP: u8 = 5;
const O_HITCOUNT: u8 = 6;
const O_RTTL: u8 = 7;
const O_NAME: u8 = 8;
const O_RSOURCE: u8 = 9;
const O_RDEST: u8 = 10;
const O_MASK: u8 = 11;
const F_SET: u32 = 1 << O_SET;
const F_REMOVE: u32 = 1 << O_REMOVE;
const F_SECONDS: u32 = 1 << O_SECONDS;
const F_ANY_OP: u32 = F_SET | 1 << O_RCHECK | 1 << O_UPDATE | F_REMOVE;

/// A command: `!` may precede it, and it excludes the others.
const fn command(name: &'static str, id: u8) -> Entry {
    Entry {
        has_arg: HasArg::No,
        ..entry(name, id, true, F_ANY_OP)
    }
}

pub const ENTRIES: [Entry; 12] = [
    command("set", O_SET),
    command("rcheck", O_RCHECK),
    command("update", O_UPDATE),
    command("remove", O_REMOVE),
    entry("seconds", O_SECONDS, false, 0),
    Entry {
        also: F_SECONDS,
        ..flag("reap", O_REAP)
    },
    entry("hitcount", O_HITCOUNT, false, 0),
    Entry {
        excl: F_SET | F_REMOVE,
        ..flag("rttl", O_RTTL)
    },
    entry("name", O_NAME, false, 0),
    flag("rsource", O_RSOURCE),
    flag("rdest", O_RDEST),
    entry("mask", O_MASK, false, 0),
];

/// xt_recent's longest name, with its NUL.
const NAME_LEN: usize = 200;

impl Extension for RecentExt {
    fn name(&self) -> &'static str {
        "recent"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Recent(Recent {
            name: "DEFAULT".into(),
            mask: u32::MAX,
            ..Recent::default()
        }))
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let Match::Recent(r) = v.as_match() else {
            unreachable!("a recent instance holds a recent match");
        };
        let bad = |option: &str, range: &str| {
            param(format!(
                "recent: bad value for option \"--{option}\", or out of range ({range}).\n"
            ))
        };
        match id {
            O_SET | O_RCHECK | O_UPDATE | O_REMOVE => {
                r.op = [op::SET, op::CHECK, op::UPDATE, op::REMOVE][id as usize];
                r.invert |= invert;
            }
            O_SECONDS => {
                r.seconds = xtables_uint(arg, 1, u32::MAX as u64)
                    .ok_or_else(|| bad("seconds", "1-4294967295"))?
                    as u32;
            }
            O_REAP => r.reap = true,
            O_HITCOUNT => {
                r.hitcount = xtables_uint(arg, 0, u32::MAX as u64)
                    .ok_or_else(|| bad("hitcount", "0-4294967295"))?
                    as u32;
            }
            O_RTTL => r.rttl = true,
            // XTTYPE_STRING into xt_recent's 200-byte name.
            O_NAME => r.name = truncate(arg, NAME_LEN - 1),
            O_RSOURCE => r.dest = false,
            O_RDEST => r.dest = true,
            _ => {
                r.mask = host_address(cx.db, arg)?;
                r.mask_given = true;
            }
        }
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & F_ANY_OP == 0 {
            return Err(param(
                "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Recent(r) = m else { return };
        let _ = write!(
            out,
            "{} --{}",
            bang(r.invert),
            COMMANDS[r.op as usize % 5].0
        );
        modifiers(r, [" --seconds", " --reap", " --hitcount", " --rttl"], out);
        let side = if r.dest { "rdest" } else { "rsource" };
        let _ = write!(out, " --name {} --mask {} --{side}", r.name, mask(r));
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Recent(r) = m else { return };
        let _ = write!(
            out,
            "{} recent: {}",
            bang(r.invert),
            COMMANDS[r.op as usize % 5].1
        );
        modifiers(r, [" seconds:", " reap", " hit_count:", " TTL-Match"], out);
        let side = if r.dest { "dest" } else { "source" };
        let _ = write!(out, " name: {} side: {side} mask: {}", r.name, mask(r));
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Recent(r), Field::Recent) => Some(Want::Recent(r.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// Each command's option (save) and word (`-L`), by `op`.
const COMMANDS: [(&str, &str); 5] = [
    ("", ""),
    ("set", "SET"),
    ("rcheck", "CHECK"),
    ("update", "UPDATE"),
    ("remove", "REMOVE"),
];

/// `--seconds`, `--reap`, `--hitcount`, `--rttl` where set, under these labels (libxt_recent
/// prints the numbers with `%d`).
fn modifiers(r: &Recent, labels: [&str; 4], out: &mut String) {
    if r.seconds != 0 {
        let _ = write!(out, "{} {}", labels[0], r.seconds as i32);
    }
    if r.reap {
        out.push_str(labels[1]);
    }
    if r.hitcount != 0 {
        let _ = write!(out, "{} {}", labels[2], r.hitcount as i32);
    }
    if r.rttl {
        out.push_str(labels[3]);
    }
}

fn mask(r: &Recent) -> Ipv4Addr {
    Ipv4Addr::from(r.mask)
}

fn bang(invert: bool) -> &'static str {
    if invert { " !" } else { "" }
}

/// Whether xt_recent's `recent_mt_check` takes the match (else the kernel says EINVAL): one
/// command; no `--seconds`, `--hitcount`, `--rttl` or `--reap` with `--set` or `--remove`; a
/// hitcount below 65536; a name procfs can hold (`xt_check_proc_name`).
pub fn kernel_accepts(r: &Recent) -> bool {
    let modifies = r.seconds != 0 || r.hitcount != 0 || r.rttl || r.reap;
    !(matches!(r.op, op::SET | op::REMOVE) && modifies)
        && r.hitcount < 65536
        && !(r.name.is_empty() || r.name == "." || r.name == ".." || r.name.contains('/'))
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "recent match options:\n",
    "[!] --set                       Add source address to list, always matches.\n",
    "[!] --rcheck                    Match if source address in list.\n",
    "[!] --update                    Match if source address in list, also update last-seen time.\n",
    "[!] --remove                    Match if source address in list, also removes that address from list.\n",
    "    --seconds seconds           For check and update commands above.\n",
    "                                Specifies that the match will only occur if source address last seen within\n",
    "                                the last 'seconds' seconds.\n",
    "    --reap                      Purge entries older then 'seconds'.\n",
    "                                Can only be used in conjunction with the seconds option.\n",
    "    --hitcount hits             For check and update commands above.\n",
    "                                Specifies that the match will only occur if source address seen hits times.\n",
    "                                May be used in conjunction with the seconds option.\n",
    "    --rttl                      For check and update commands above.\n",
    "                                Specifies that the match will only occur if the source address and the TTL\n",
    "                                match between this packet and the one which was set.\n",
    "                                Useful if you have problems with people spoofing their source address in order\n",
    "                                to DoS you via this module.\n",
    "    --name name                 Name of the recent list to be used.  DEFAULT used if none given.\n",
    "    --rsource                   Match/Save the source address of each packet in the recent list table (default).\n",
    "    --rdest                     Match/Save the destination address of each packet in the recent list table.\n",
    "    --mask netmask              Netmask that will be applied to this recent list.\n",
    "xt_recent by: Stephen Frost <sfrost@snowman.net>.\n",
);
