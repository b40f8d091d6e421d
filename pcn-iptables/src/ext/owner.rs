//! libxt_owner: `[!] --uid-owner user[-user]`, `[!] --gid-owner group[-group]`,
//! `--suppl-groups`, `[!] --socket-exists` (OUTPUT and POSTROUTING).

use std::fmt::Write as _;

use nix::unistd::{Gid, Group, Uid, User};

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, flag};
use crate::error::Result;
use crate::model::{Match, Negatable, Owner};
use crate::xtables::{HasArg, param, value::xtables_uint_prefix};

pub struct OwnerExt;

const O_USER: u8 = 0;
const O_GROUP: u8 = 1;
const O_SUPPL_GROUPS: u8 = 2;
const O_SOCK_EXISTS: u8 = 3;

pub const ENTRIES: [Entry; 4] = [
    entry("uid-owner", O_USER, true, 0),
    entry("gid-owner", O_GROUP, true, 0),
    flag("suppl-groups", O_SUPPL_GROUPS),
    Entry {
        has_arg: HasArg::No,
        ..entry("socket-exists", O_SOCK_EXISTS, true, 0)
    },
];

impl Extension for OwnerExt {
    fn name(&self) -> &'static str {
        "owner"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Owner(Owner::default()))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let Match::Owner(o) = v.as_match() else {
            unreachable!("an owner instance holds an owner match");
        };
        let value = |range| {
            Some(Negatable {
                value: range,
                negated: invert,
            })
        };
        match id {
            O_USER => {
                let by_name = User::from_name(arg).ok().flatten().map(|u| u.uid.as_raw());
                o.uid = value(by_name.map_or_else(|| range("--uid-owner", arg), |u| Ok((u, u)))?);
            }
            O_GROUP => {
                let by_name = Group::from_name(arg).ok().flatten().map(|g| g.gid.as_raw());
                o.gid = value(by_name.map_or_else(|| range("--gid-owner", arg), |g| Ok((g, g)))?);
            }
            O_SUPPL_GROUPS => {
                if o.gid.is_none() {
                    return Err(bad("--suppl-groups", "you need to use --gid-owner first"));
                }
                o.suppl_groups = true;
            }
            _ => {
                o.socket = Some(Negatable {
                    value: (),
                    negated: invert,
                })
            }
        }
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param(
                "owner: At least one of --uid-owner, --gid-owner or --socket-exists is required",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Owner(o) = m else { return };
        print(
            o,
            [
                "--socket-exists",
                "--uid-owner",
                "--gid-owner",
                "--suppl-groups",
            ],
            true,
            out,
        );
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        let Match::Owner(o) = m else { return };
        let labels = [
            "owner socket exists",
            "owner UID match",
            "owner GID match",
            "incl. suppl. groups",
        ];
        print(o, labels, show.numeric, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Owner(o), Field::Owner) => Some(Want::Owner(o.clone())),
            _ => None,
        }
    }

    fn per_packet(&self, _: &Match) -> bool {
        // The socket is the packet's, not the flow's.
        true
    }
}

fn bad(option: &str, arg: &str) -> crate::error::Error {
    param(format!(
        "owner: Bad value for \"{option}\" option: \"{arg}\""
    ))
}

/// libxt_owner's `owner_parse_range`: `N`, `N-M` or `N:M`, below 2^32 - 1.
fn range(option: &str, arg: &str) -> Result<(u32, u32)> {
    let max = u32::MAX as u64 - 1;
    let (from, rest) = xtables_uint_prefix(arg, max).ok_or_else(|| bad(option, arg))?;
    let (to, rest) = match rest.strip_prefix(['-', ':']) {
        Some(to) => xtables_uint_prefix(to, max).ok_or_else(|| bad(option, arg))?,
        None => (from, rest),
    };
    if !rest.is_empty() {
        return Err(bad(option, arg));
    }
    Ok((from as u32, to as u32))
}

/// libxt_owner's `owner_mt_print_item` for each option, with these labels: a single user or
/// group by name unless `numeric`.
fn print(o: &Owner, labels: [&str; 4], numeric: bool, out: &mut String) {
    let bang = |n: bool| if n { " !" } else { "" };
    if let Some(s) = &o.socket {
        let _ = write!(out, "{} {}", bang(s.negated), labels[0]);
    }
    let ids = [
        (&o.uid, labels[1], user_name as fn(u32) -> Option<String>),
        (&o.gid, labels[2], group_name),
    ];
    for (id, label, name) in ids {
        let Some(id) = id else { continue };
        let (lo, hi) = id.value;
        let _ = write!(out, "{} {label}", bang(id.negated));
        let named = (lo == hi && !numeric).then(|| name(lo)).flatten();
        let _ = match named {
            Some(n) => write!(out, " {n}"),
            None if lo == hi => write!(out, " {lo}"),
            None => write!(out, " {lo}-{hi}"),
        };
    }
    if o.suppl_groups {
        let _ = write!(out, " {}", labels[3]);
    }
}

fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// Whether xt_owner takes the match (else the kernel says EINVAL): ranges that go up.
pub fn kernel_accepts(o: &Owner) -> bool {
    [&o.uid, &o.gid]
        .into_iter()
        .flatten()
        .all(|r| r.value.0 <= r.value.1)
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "owner match options:\n",
    "[!] --uid-owner userid[-userid]      Match local UID\n",
    "[!] --gid-owner groupid[-groupid]    Match local GID\n",
    "[!] --socket-exists                  Match if socket exists\n",
    "    --suppl-groups                   Also match supplementary groups set with --gid-owner\n",
);
