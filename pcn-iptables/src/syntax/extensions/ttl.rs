//! libxt_ttl: `--ttl-eq`, `--ttl-lt`, `--ttl-gt` (and `--ttl`, an alias of `--ttl-eq`).

use super::{Entry, entry};
use crate::error::Result;
use crate::ruleset::model::{Match, TtlMode};

const ANY: u32 = 0b111;
const EQ: u8 = 0;
const LT: u8 = 1;
/// In the order libxt_ttl's table gives them (its exclusion messages follow it).
pub const ENTRIES: [Entry; 4] = [
    entry("ttl-lt", LT, false, ANY),
    entry("ttl-gt", 2, false, ANY),
    entry("ttl-eq", EQ, true, ANY),
    entry("ttl", EQ, true, ANY),
];

pub fn parse(m: &mut Match, id: u8, text: &str, invert: bool) -> Result<()> {
    let option = match id {
        EQ => "ttl-eq",
        LT => "ttl-lt",
        _ => "ttl-gt",
    };
    let value = super::uint_option("ttl", option, text, 255)? as u8;
    let mode = match (id, invert) {
        (EQ, false) => TtlMode::Eq,
        (EQ, true) => TtlMode::Ne,
        (LT, _) => TtlMode::Lt,
        _ => TtlMode::Gt,
    };
    *m = Match::Ttl { mode, value };
    Ok(())
}
