//! libxt_iprange (revision 1): `--src-range`/`--dst-range FIRST[-LAST]`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry};
use crate::error::Result;
use crate::model::{AddrRange, Match, Negatable};

pub struct Iprange;

impl Extension for Iprange {
    fn name(&self) -> &'static str {
        "iprange"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Iprange {
            src: None,
            dst: None,
        })
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        parse(v.as_match(), id, arg, invert, cx)
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(crate::xtables::param(
                "iprange match: You must specify `--src-range' or `--dst-range'",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Iprange { src, dst } = m else {
            return;
        };
        for (option, range) in [("src-range", src), ("dst-range", dst)] {
            if let Some(r) = range {
                let _ = write!(
                    out,
                    "{} --{option} {}-{}",
                    bang(r.negated),
                    r.value.first,
                    r.value.last
                );
            }
        }
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Iprange { src, dst } = m else {
            return;
        };
        for (label, range) in [("source", src), ("destination", dst)] {
            if let Some(r) = range {
                let _ = write!(
                    out,
                    " {label} IP range{} {}-{}",
                    bang(r.negated),
                    r.value.first,
                    r.value.last
                );
            }
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let Match::Iprange { src, dst } = m else {
            return None;
        };
        let r = match field {
            Field::Src => src,
            Field::Dst => dst,
            _ => return None,
        };
        r.as_ref()
            .map(|r| Want::ranges([(r.value.first.into(), r.value.last.into())], r.negated))
    }
}
use crate::xtables::value::dotted_quad;

pub const ENTRIES: [Entry; 2] = [
    entry("src-range", 0, true, 0),
    entry("dst-range", 1, true, 0),
];

pub fn parse(m: &mut Match, id: u8, text: &str, invert: bool, cx: &mut Context) -> Result<()> {
    let option = ENTRIES[id as usize].name;
    let addr = |s: &str| {
        dotted_quad(s, false).ok_or_else(|| {
            crate::xtables::param(format!(
                "iprange: Bad value for \"--{option}\" option: \"{s}\""
            ))
        })
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (addr(first)?, addr(last)?),
        None => {
            let a = addr(text)?;
            (a, a)
        }
    };
    if first > last {
        cx.warnings.push(format!(
            "xt_iprange: range {first}-{last} is reversed and will never match\n"
        ));
    }
    let range = Some(Negatable {
        value: AddrRange { first, last },
        negated: invert,
    });
    if let Match::Iprange { src, dst } = m {
        match id {
            0 => *src = range,
            _ => *dst = range,
        }
    }
    Ok(())
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "iprange match options:\n",
    "[!] --src-range ip[-ip]    Match source IP in the specified range\n",
    "[!] --dst-range ip[-ip]    Match destination IP in the specified range\n",
);
