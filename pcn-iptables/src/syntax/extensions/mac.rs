//! libxt_mac: `--mac-source XX:XX:XX:XX:XX:XX`.

use super::{Entry, mandatory};
use crate::error::Result;
use crate::ruleset::model::{Match, Negatable};

pub const ENTRIES: [Entry; 1] = [mandatory("mac-source", 0, true)];

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Mac(Negatable {
        value: parse_mac(text).ok_or_else(|| super::param("Invalid MAC address specified."))?,
        negated: invert,
    });
    Ok(())
}

/// libxtables' `xtopt_parse_ethermac`: six `strtoul(.., 16)` numbers of at most two
/// characters each, separated by colons.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        // strtoul stops at the first non-hex digit; the rest must be the separator.
        if part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = if part.is_empty() {
            0
        } else {
            u8::from_str_radix(part, 16).ok()?
        };
    }
    Some(mac)
}

/// How `-S` and `-L` show an address.
pub fn format(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
