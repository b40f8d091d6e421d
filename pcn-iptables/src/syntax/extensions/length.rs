//! libxt_length: `--length MIN[:MAX]` of the IP total length.

use super::{Entry, mandatory};
use crate::error::Result;
use crate::ruleset::model::{Match, Negatable, PortRange};
use crate::syntax::value::xtables_uint;

pub const ENTRIES: [Entry; 1] = [mandatory("length", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Length(Negatable {
        value: range(text)?,
        negated: invert,
    });
    Ok(())
}

/// libxtables' `xtopt_parse_mint` for XTTYPE_UINT16RC: `a`, `a:b`, `:b`, `a:`; a reversed
/// range is taken (it matches nothing).
fn range(text: &str) -> Result<PortRange> {
    let mut values = [0, u16::MAX];
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 2 {
        return Err(super::param(
            "length: Too many components for option \"--length\" (max: 2)\n",
        ));
    }
    let mut rest = text;
    for (value, part) in values.iter_mut().zip(&parts) {
        if !part.is_empty() {
            *value = xtables_uint(part, 0, u16::MAX as u64).ok_or_else(|| {
                super::param(format!(
                    "length: bad value for option \"--length\" near \"{rest}\", or out of range (0-65535).\n"
                ))
            })? as u16;
        }
        rest = rest.get(part.len() + 1..).unwrap_or_default();
    }
    if parts.len() == 1 {
        values[1] = values[0];
    }
    Ok(PortRange {
        first: values[0],
        last: values[1],
    })
}
