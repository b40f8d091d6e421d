//! The names and addresses of a command line: tables, chains, targets, `-s`/`-d` hosts, with
//! iptables' checks and messages.

use std::net::Ipv4Addr;

use super::options::{EXTENSION_TARGETS, MAX_NAME, is_target};
use crate::error::{Error, Result, VERSION_PROBLEM};
use crate::model::{AddrMask, MAX_CHAIN_LABEL, TableName, Target};
use crate::xtables::netdb::NameDb;
use crate::xtables::{param, unsupported, value};

/// `iptc_init`'s answer for the table of `-t`: pcn-iptables has all of iptables' tables but
/// security.
pub(super) fn check_table(table: &str) -> Result<()> {
    Err(match TableName::by_name(table) {
        Some(name) if name.is_kept() => return Ok(()),
        Some(_) => unsupported(format_args!("table `{table}'")),
        None => Error::versioned(
            VERSION_PROBLEM,
            format!(
                "can't initialize iptables table `{table}': Table does not exist (do you need to insmod?)\n\
                 Perhaps iptables or your kernel needs to be upgraded."
            ),
        ),
    })
}

/// `assert_valid_chain_name`, for `-N`.
pub(super) fn valid_chain_name(name: &str) -> Result<()> {
    if name.len() >= MAX_NAME {
        return Err(param(format!(
            "chain name `{name}' too long (must be under {MAX_NAME} chars)"
        )));
    }
    if let Some(c) = name.chars().next().filter(|c| matches!(c, '-' | '!')) {
        return Err(param(format!("chain name not allowed to start with `{c}'")));
    }
    if is_target(name) {
        return Err(param("chain name may not clash with target name"));
    }
    if name.contains(value::is_c_space) {
        return Err(param(format!("Invalid chain name `{name}'")));
    }
    Ok(())
}

/// `-E` takes the new names libiptc takes, which refuses only existing chains, the verdicts and
/// names over 31 characters. pcn-iptables stores its rules as iptables commands, to be read
/// back: it refuses, as not supported, the names no other command could then name (empty, with
/// white space, of 29 characters or more, which iptables cuts to 29) or would take for a
/// target.
pub(super) fn storable_chain_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(value::is_c_space) {
        return Err(unsupported(format_args!(
            "chain name `{name}' (empty or with white space)"
        )));
    }
    if name.len() >= MAX_NAME && name.len() < MAX_CHAIN_LABEL {
        return Err(unsupported(format_args!(
            "chain name `{name}' ({MAX_NAME} chars or more)"
        )));
    }
    if is_target(name) && !matches!(name, "ACCEPT" | "DROP" | "QUEUE" | "RETURN") {
        return Err(unsupported(format_args!(
            "chain name `{name}' (a target's name)"
        )));
    }
    Ok(())
}

/// `xt_parse_target`
pub(super) fn target_name(name: &str) -> Result<&str> {
    if name.is_empty() {
        return Err(param("Invalid target name (too short)"));
    }
    if name.len() >= MAX_NAME {
        return Err(param(format!(
            "Invalid target name `{name}' ({} chars max)",
            MAX_NAME - 1
        )));
    }
    if name.contains(value::is_c_space) {
        return Err(param(format!("Invalid target name `{name}'")));
    }
    Ok(name)
}

/// `-j NAME`: a verdict, a target extension (refused), or a chain.
pub(super) fn jump_target(name: &str) -> Result<Target> {
    Ok(match name {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        _ if EXTENSION_TARGETS.contains(&name) => {
            return Err(unsupported(format_args!("target `{name}'")));
        }
        _ => Target::Jump(name.to_string()),
    })
}

/// `xtables_ipparse_multiple`: comma-separated `host[/mask]`s, each possibly several addresses,
/// masked (any mask, contiguous or not).
pub(super) fn addresses(db: &NameDb, text: &str) -> Result<Vec<AddrMask>> {
    let mut nets = Vec::new();
    for item in text.split(',') {
        let item = item.trim_start_matches(value::is_c_space);
        if item.len() > 255 {
            return Err(param("Hostname too long"));
        }
        let (host, mask) = match item.rsplit_once('/') {
            Some((host, mask)) => (
                host,
                value::mask(mask)
                    .ok_or_else(|| param(format!("invalid mask `{mask}' specified")))?,
            ),
            None => (item, Ipv4Addr::BROADCAST),
        };
        // "any/0": with a zero mask the name is not even looked up.
        let host = if mask.is_unspecified() {
            "0.0.0.0"
        } else {
            host
        };
        let found = value::host_addresses(db, host);
        if found.is_empty() {
            return Err(param(format!("host/network `{host}' not found")));
        }
        nets.extend(found.into_iter().map(|addr| AddrMask::new(addr, mask)));
    }
    Ok(nets)
}
