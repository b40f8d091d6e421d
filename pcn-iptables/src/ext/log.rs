//! libipt_LOG: `--log-level`, `--log-prefix` and the `--log-*` flags.

use std::fmt::Write as _;

use pcn_iptables_common::{Action, LOG_PREFIX_LEN, log_flag, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry, flag};
use crate::error::Result;
use crate::model::{Log, Target};
use crate::xtables::save_string;
use crate::xtables::value::xtables_uint;

pub struct LogExt;

impl Extension for LogExt {
    fn name(&self) -> &'static str {
        "LOG"
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Target(Target::Log(Log {
            level: Log::DEFAULT_LEVEL,
            flags: 0,
            prefix: String::new(),
        }))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        parse(v.as_target(), id, arg)
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Log(l) = t else { return };
        if !l.prefix.is_empty() {
            let _ = write!(out, " --log-prefix {}", save_string(&l.prefix));
        }
        if l.level != Log::DEFAULT_LEVEL {
            let _ = write!(out, " --log-level {}", l.level);
        }
        for (bit, name) in FLAGS {
            if l.flags & bit != 0 {
                let _ = write!(out, " --log-{name}");
            }
        }
    }

    fn print_target(&self, t: &Target, numeric: bool, out: &mut String) {
        let Target::Log(l) = t else { return };
        *out += " LOG";
        if numeric {
            let _ = write!(out, " flags {} level {}", l.flags, l.level);
        } else {
            let _ = write!(out, " level {}", LEVEL_NAMES[l.level as usize & 7]);
            for (bit, name) in FLAGS {
                if l.flags & bit != 0 {
                    let _ = write!(out, " {name}");
                }
            }
        }
        if !l.prefix.is_empty() {
            let _ = write!(out, " prefix \"{}\"", l.prefix);
        }
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Log(log) = t else {
            unreachable!("LOG's target")
        };
        action.log_level = log.level;
        action.log_flags = log.flags;
        let prefix = log.prefix.as_bytes();
        let n = prefix.len().min(LOG_PREFIX_LEN - 1);
        action.log_prefix[..n].copy_from_slice(&prefix[..n]);
        verdict::LOG
    }
}

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
                .ok_or_else(|| crate::xtables::param(format!("log level \"{text}\" unknown\n")))?;
        }
        1 => {
            if text.is_empty() {
                return Err(crate::xtables::param(
                    "Argument must have a minimum length of 1 characters\n",
                ));
            }
            if text.contains('\n') {
                return Err(crate::xtables::param(
                    "Newlines not allowed in --log-prefix",
                ));
            }
            log.prefix = crate::xtables::truncate(text, MAX_PREFIX);
        }
        6 => {
            return Err(crate::xtables::unsupported("option \"--log-macdecode\""));
        }
        _ => log.flags |= FLAGS[id as usize - 2].0,
    }
    Ok(())
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "LOG target options:\n",
    " --log-level level\t\tLevel of logging (numeric or see syslog.conf)\n",
    " --log-prefix prefix\t\tPrefix log messages with this prefix.\n",
    " --log-tcp-sequence\t\tLog TCP sequence numbers.\n",
    " --log-tcp-options\t\tLog TCP options.\n",
    " --log-ip-options\t\tLog IP options.\n",
    " --log-uid\t\t\tLog UID owning the local socket.\n",
    " --log-macdecode\t\tDecode MAC addresses and protocol.\n",
);
