//! libxt_length: `--length MIN[:MAX]` of the IP total length.

use super::{Entry, mandatory};
use crate::error::Result;
use crate::ruleset::model::{Match, Negatable, PortRange};
use crate::syntax::value::xtables_uint_prefix;

pub const ENTRIES: [Entry; 1] = [mandatory("length", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Length(Negatable {
        value: range(text)?,
        negated: invert,
    });
    Ok(())
}

/// libxtables' `xtopt_parse_mint` for XTTYPE_UINT16RC: `a`, `a:b`, `:b`, `a:`, each number
/// read like strtoul(3) and followed by `:` or the end; a reversed range is taken (it matches
/// nothing).
fn range(text: &str) -> Result<PortRange> {
    let mut values: Vec<u16> = Vec::with_capacity(2);
    let mut arg = text;
    loop {
        if values.len() == 2 {
            return Err(super::param(
                "length: Too many components for option \"--length\" (max: 2)\n",
            ));
        }
        let (value, end) = if arg.is_empty() || arg.starts_with(':') {
            // A component left out: 0 first, the maximum second.
            (if values.len() == 1 { u16::MAX } else { 0 }, arg)
        } else {
            let (v, end) = xtables_uint_prefix(arg, u16::MAX as u64).ok_or_else(|| {
                super::param(format!(
                    "length: bad value for option \"--length\" near \"{arg}\", or out of range (0-65535).\n"
                ))
            })?;
            if !end.is_empty() && !end.starts_with(':') {
                return Err(super::param(format!(
                    "length: Argument to \"--length\" has unexpected characters near \"{end}\".\n"
                )));
            }
            (v as u16, end)
        };
        values.push(value);
        match end.strip_prefix(':') {
            Some(next) => arg = next,
            None => break,
        }
    }
    let first = values[0];
    Ok(PortRange {
        first,
        last: values.get(1).copied().unwrap_or(first),
    })
}
