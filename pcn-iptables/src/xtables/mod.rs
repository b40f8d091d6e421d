//! What iptables keeps in libxtables, below its extensions and its command line: the value
//! grammars (numbers, addresses, ports, protocols), the name databases, and the helpers every
//! extension's parser and printer shares. It imports nothing of the crate but the model's
//! neighbours (`error`).

pub mod netdb;
pub mod value;

use crate::error::{Error, Result};

/// Whether an option takes an argument (`struct option`'s `has_arg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HasArg {
    No,
    Required,
    /// Only attached: `-Lchain` or `--list=chain`.
    Optional,
}

pub fn param(message: impl Into<String>) -> Error {
    Error::parameter(message)
}

/// What pcn-iptables refuses although iptables takes it.
pub fn unsupported(what: impl std::fmt::Display) -> Error {
    param(format!("{what} is not supported by pcn-iptables"))
}

/// The first `max` bytes of `text`, as a C buffer would keep them.
pub fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `xtables_save_string`: bare when only `[A-Za-z0-9_-]`, otherwise double-quoted with `"`,
/// `\` and `'` escaped.
pub fn save_string(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return text.to_string();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An unsigned value of an `XTTYPE_UINT*` option: `what` names the option in the message
/// ("ttl: bad value for option \"--ttl-eq\", or out of range (0-255).").
pub fn uint_option(ext: &str, option: &str, text: &str, max: u64) -> Result<u64> {
    value::xtables_uint(text, 0, max).ok_or_else(|| {
        param(format!(
            "{ext}: bad value for option \"--{option}\", or out of range (0-{max}).\n"
        ))
    })
}
