//! libipt_LOG: `--log-level`, `--log-prefix` and the `--log-*` flags.

use super::{Entry, entry, flag};
use crate::error::Result;
use crate::ruleset::model::Target;
use crate::syntax::value::xtables_uint;
use pcn_iptables_common::{LOG_PREFIX_LEN, log_flag};

pub const ENTRIES: [Entry; 7] = [
    entry("log-level", 0, false, 0),
    entry("log-prefix", 1, false, 0),
    flag("log-tcp-sequence", 2),
    flag("log-tcp-options", 3),
    flag("log-ip-options", 4),
    flag("log-uid", 5),
    flag("log-macdecode", 6),
];

/// The flags of ids 2..=5, in `-S` and `-L` order.
pub const FLAGS: [(u8, &str); 4] = [
    (log_flag::TCP_SEQUENCE, "tcp-sequence"),
    (log_flag::TCP_OPTIONS, "tcp-options"),
    (log_flag::IP_OPTIONS, "ip-options"),
    (log_flag::UID, "uid"),
];

/// The level names `--log-level` takes (exactly, case-sensitive).
const LEVELS: [(&str, u8); 9] = [
    ("alert", 1),
    ("crit", 2),
    ("debug", 7),
    ("emerg", 0),
    ("error", 3),
    ("info", 6),
    ("notice", 5),
    ("panic", 0),
    ("warning", 4),
];

/// The names `-L` shows, by level.
pub const LEVEL_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `--log-prefix` keeps at most this many bytes.
pub const MAX_PREFIX: usize = 29;
const _: () = assert!(MAX_PREFIX < LOG_PREFIX_LEN);

pub fn parse(t: &mut Target, id: u8, text: &str) -> Result<()> {
    let Target::Log(log) = t else {
        unreachable!("a LOG instance holds a LOG target");
    };
    match id {
        0 => {
            log.level = LEVELS
                .iter()
                .find(|(name, _)| *name == text)
                .map(|(_, level)| *level)
                .or_else(|| xtables_uint(text, 0, 7).map(|l| l as u8))
                .ok_or_else(|| super::param(format!("log level \"{text}\" unknown\n")))?;
        }
        1 => {
            if text.is_empty() {
                return Err(super::param(
                    "Argument must have a minimum length of 1 characters\n",
                ));
            }
            if text.contains('\n') {
                return Err(super::param("Newlines not allowed in --log-prefix"));
            }
            log.prefix = super::truncate(text, MAX_PREFIX);
        }
        6 => {
            return Err(crate::syntax::command::unsupported(
                "option \"--log-macdecode\"",
            ));
        }
        _ => log.flags |= FLAGS[id as usize - 2].0,
    }
    Ok(())
}
