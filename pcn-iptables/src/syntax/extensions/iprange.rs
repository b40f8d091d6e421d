//! libxt_iprange (revision 1): `--src-range`/`--dst-range FIRST[-LAST]`.

use super::{Context, Entry, entry};
use crate::error::Result;
use crate::ruleset::model::{AddrRange, Match, Negatable};
use crate::syntax::value::dotted_quad;

pub const ENTRIES: [Entry; 2] = [
    entry("src-range", 0, true, 0),
    entry("dst-range", 1, true, 0),
];

pub fn parse(m: &mut Match, id: u8, text: &str, invert: bool, cx: &mut Context) -> Result<()> {
    let option = ENTRIES[id as usize].name;
    let addr = |s: &str| {
        dotted_quad(s, false).ok_or_else(|| {
            super::param(format!(
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
