//! What iptables keeps in libxtables, below its extensions and its command line: the value
//! grammars (numbers, addresses, ports, protocols), the name databases, and the helpers every
//! extension's parser and printer shares. It imports nothing of the crate but the model's
//! neighbours (`error`).

pub mod netdb;
pub mod value;

use crate::error::{Error, Result};
use netdb::NameDb;

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

/// libxtables' XTTYPE_PORTRC, `PORT[:PORT]` of option `--option` of extension `ext`: each
/// part a port number or service name as getaddrinfo(3) reads it (`port`), a part left out
/// 0 (low) or 65535 (high); a reversed range is taken (it matches nothing).
pub fn port_range(db: &NameDb, ext: &str, option: &str, text: &str) -> Result<[u16; 2]> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 2 {
        return Err(param(format!(
            "{ext}: Too many components for option \"--{option}\" (max: 2)\n"
        )));
    }
    let mut range = [0u16, u16::MAX];
    for (i, part) in parts.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        range[i] = port(db, part)
            .ok_or_else(|| param(format!("Port \"{part}\" does not resolve to anything.\n")))?;
    }
    if parts.len() == 1 {
        range[1] = range[0];
    }
    Ok(range)
}

/// `xtables_getportbyname`: getaddrinfo(3)'s service, a decimal number (strtoul(3) into an
/// int: one that does not fit is looked up as a name, and fails) cut to 16 bits, else a
/// name of /etc/services.
fn port(db: &NameDb, text: &str) -> Option<u16> {
    match value::decimal_number(text) {
        Some(n) if n.rest.is_empty() => {
            let num = n.magnitude.map_or(-1, |_| n.value() as i32);
            (num >= 0).then_some(num as u16)
        }
        _ => db.service_port_any(text),
    }
}

/// libxtables' `xtopt_parse_mint` for a range type (XTTYPE_UINT16RC, UINT32RC): `a`, `a:b`,
/// `:b`, `a:`, each number read like strtoul(3) and followed by `:` or the end; a reversed
/// range is taken (it matches nothing).
pub fn mint_range(ext: &str, option: &str, text: &str, max: u64) -> Result<(u64, u64)> {
    let mut values: Vec<u64> = Vec::with_capacity(2);
    let mut arg = text;
    loop {
        if values.len() == 2 {
            return Err(param(format!(
                "{ext}: Too many components for option \"--{option}\" (max: 2)\n"
            )));
        }
        let (value, end) = if arg.is_empty() || arg.starts_with(':') {
            // A component left out: 0 first, the maximum second.
            (if values.len() == 1 { max } else { 0 }, arg)
        } else {
            let (v, end) = value::xtables_uint_prefix(arg, max).ok_or_else(|| {
                param(format!(
                    "{ext}: bad value for option \"--{option}\" near \"{arg}\", or out of range (0-{max}).\n"
                ))
            })?;
            if !end.is_empty() && !end.starts_with(':') {
                return Err(param(format!(
                    "{ext}: Argument to \"--{option}\" has unexpected characters near \"{end}\".\n"
                )));
            }
            (v, end)
        };
        values.push(value);
        match end.strip_prefix(':') {
            Some(next) => arg = next,
            None => break,
        }
    }
    Ok((values[0], values.get(1).copied().unwrap_or(values[0])))
}

/// libxtables' `xtopt_parse_plen` for IPv4: a prefix length up to 32, else a dotted mask
/// (`inet_aton`, so "64" is 0.0.0.64) as its prefix length; `None` for a mask that is not a
/// prefix (`xtables_ipmask_to_cidr`'s -1).
pub fn plen(ext: &str, option: &str, arg: &str) -> Result<Option<u8>> {
    if let Some(len) = value::xtables_uint(arg, 0, 32) {
        return Ok(Some(len as u8));
    }
    let mask = value::inet_aton(arg).ok_or_else(|| {
        param(format!(
            "{ext}: bad value for option \"--{option}\", neither a valid network mask nor \
             valid CIDR (0-32).\n"
        ))
    })?;
    let bits = u32::from(mask);
    let len = bits.leading_ones();
    Ok((bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8))
}

/// libxtables' `XTTYPE_MARKMASK32`: `VALUE[/MASK]`, numbers as strtoul(3) reads them in any
/// base; the mask is all ones when not given.
pub fn markmask(ext: &str, option: &str, arg: &str) -> Result<(u32, u32)> {
    let bad = || {
        param(format!(
            "{ext}: bad integer value for option \"--{option}\", or out of range.\n"
        ))
    };
    let (value, rest) = value::xtables_uint_prefix(arg, u32::MAX as u64).ok_or_else(bad)?;
    let (mask, rest) = match rest.strip_prefix('/') {
        Some(mask) => value::xtables_uint_prefix(mask, u32::MAX as u64).ok_or_else(bad)?,
        None => (u32::MAX as u64, rest),
    };
    if !rest.is_empty() {
        return Err(param(format!(
            "{ext}: trailing garbage after value for option \"--{option}\".\n"
        )));
    }
    Ok((value as u32, mask as u32))
}

/// libxtables' `XTTYPE_HOSTMASK`: `xtopt_parse_host` on what precedes the first `/`, then
/// `xtopt_parse_plenmask` on what follows (a prefix length, or else a dotted mask, which
/// stands for its prefix length: one with holes for all 32 bits). Host order. The last value
/// says whether the mask is a prefix length's: libxtables then zeroes the rest of its
/// 128-bit mask, else that stays all ones, so `1.2.3.4/32` and `1.2.3.4` are different rules
/// to the kernel (`-C`, `-D`) though they print and match alike.
pub fn hostmask(db: &NameDb, ext: &str, option: &str, arg: &str) -> Result<(u32, u32, bool)> {
    let (host, mask) = match arg.split_once('/') {
        Some((host, mask)) => (host, Some(mask)),
        None => (arg, None),
    };
    let addr = host_address(db, host)?;
    let Some(mask) = mask else {
        return Ok((addr, u32::MAX, false));
    };
    let bits = match value::xtables_uint(mask, 0, 32) {
        Some(bits) => bits as u32,
        None => {
            let dotted = value::inet_aton(mask).ok_or_else(|| {
                param(format!(
                    "{ext}: bad value for option \"--{option}\", neither a valid network \
                     mask nor valid CIDR (0-32).\n"
                ))
            })?;
            let m = u32::from(dotted);
            let bits = m.leading_ones();
            // xtables_ipmask_to_cidr's -1, as a prefix length (255), keeps every bit.
            if m.checked_shl(bits).unwrap_or(0) != 0 {
                return Ok((addr, u32::MAX, false));
            }
            bits
        }
    };
    Ok((addr, u32::MAX.checked_shl(32 - bits).unwrap_or(0), true))
}

/// `xtopt_parse_host`: what `getaddrinfo(3)` answers for AF_INET (numbers, /etc/hosts; no
/// DNS), one address.
pub fn host_address(db: &NameDb, host: &str) -> Result<u32> {
    let found = match value::inet_aton(host) {
        Some(addr) => vec![addr],
        None => db.host_addresses(host),
    };
    let Some(first) = found.first() else {
        return Err(param("getaddrinfo: Name or service not known\n"));
    };
    if found.iter().any(|a| a != first) {
        return Err(param(format!("{host} resolves to more than one address\n")));
    }
    Ok(u32::from(*first))
}
