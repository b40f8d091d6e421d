//! `-L`: the rules as tables, byte for byte as iptables-legacy 1.8.9 prints them
//! (`list_entries`, `print_header`, `print_firewall`, `xtables_print_num`, the tcp/udp `print`
//! functions), and what `-v` makes the other commands print.
//!
//! Without `-n` iptables names things through libc; here addresses are named from /etc/hosts
//! then /etc/networks, ports from /etc/services and protocols from /etc/protocols, never by DNS.

pub mod conntrack;
pub mod hashlimit;
pub mod recent;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::error::Result;
use crate::ext;
use crate::model::{
    AddrMask, Chain, Command, Interface, ListOptions, Negatable, Policy, Rule, Table, Target,
    Zeroing,
};
use crate::ruleset::{kernel_target_name, no_chain, resolve_targets};
use crate::xtables::netdb::NameDb;
use crate::xtables::value::protocol_name;

/// `-L [chain [rulenum]]`. `counters` gives a slot's packets and bytes.
pub fn list(
    table: &Table,
    chain: Option<&str>,
    rulenum: Option<usize>,
    options: &ListOptions,
    counters: &dyn Fn(u32) -> (u64, u64),
) -> Result<String> {
    list_with(NameDb::system(), table, chain, rulenum, options, counters)
}

/// One rule as `-v` echoes it when a command adds, deletes, replaces or checks it
/// (`print_firewall_line`), newline included.
pub fn rule_line(rule: &Rule) -> String {
    let mut out = String::new();
    firewall(
        &mut out,
        NameDb::system(),
        rule,
        0,
        (0, 0),
        Format::PRINT_RULE,
    );
    out
}

/// What `-v` prints for `command` besides any listing: the rules of a rule command, the chains
/// -F, -Z and -X go through. For `-L -Z` and `-S -Z` it follows the listing. iptables prints it before
/// the command takes effect, even when the command then fails, but after resolving the rules'
/// targets: an unknown target is this function's error.
pub fn verbose_echo(table: &Table, command: &Command) -> Result<String> {
    let each_chain = |chain: &Option<String>, verb| -> String {
        let names: Vec<&str> = match chain {
            Some(name) => vec![name],
            None => table.chains.iter().map(|c| c.name.as_str()).collect(),
        };
        names
            .iter()
            .map(|name| format!("{verb} chain `{name}'\n"))
            .collect()
    };
    Ok(match command {
        Command::Append { rules, .. }
        | Command::Insert { rules, .. }
        | Command::Delete { rules, .. }
        | Command::Check { rules, .. } => {
            resolve_targets(table, rules)?;
            rules.iter().map(rule_line).collect()
        }
        Command::Replace { rule, .. } => {
            resolve_targets(table, std::slice::from_ref(rule))?;
            rule_line(rule)
        }
        Command::Flush { chain } => each_chain(chain, "Flushing"),
        Command::DeleteChain { chain: Some(name) } => format!("Deleting chain `{name}'\n"),
        Command::DeleteChain { chain: None } => table
            .chains
            .iter()
            .filter(|c| c.policy.is_none())
            .map(|c| format!("Deleting chain `{}'\n", c.name))
            .collect(),
        Command::Zero {
            chain,
            rulenum: None,
        }
        | Command::List {
            chain,
            zero: Some(Zeroing::Chains),
            ..
        }
        | Command::ListRules {
            chain,
            zero: Some(Zeroing::Chains),
            ..
        } => each_chain(chain, "Zeroing"),
        _ => String::new(),
    })
}

/// iptables' `FMT_*` flags, as booleans.
#[derive(Clone, Copy)]
struct Format {
    numeric: bool,
    /// Packet and byte columns (not `FMT_NOCOUNTS`).
    counts: bool,
    /// In and out interface columns (`FMT_VIA`).
    via: bool,
    /// K, M, G units (`FMT_KILOMEGAGIGA`).
    units: bool,
    line_numbers: bool,
    /// One line of `name value` pairs instead of columns (`FMT_NOTABLE`).
    notable: bool,
}

impl Format {
    /// `FMT_PRINT_RULE`
    const PRINT_RULE: Format = Format {
        numeric: true,
        counts: false,
        via: true,
        units: false,
        line_numbers: false,
        notable: true,
    };

    /// iptables' `FMT(tab, notab)`: a column padded to `width` (left-aligned when `left`), or
    /// the bare value followed by a space.
    fn column(self, out: &mut String, value: impl std::fmt::Display, width: usize, left: bool) {
        let _ = match (self.notable, left) {
            (true, _) => write!(out, "{value} "),
            (false, true) => write!(out, "{value:<width$} "),
            (false, false) => write!(out, "{value:>width$} "),
        };
    }
}

pub(crate) fn list_with(
    db: &NameDb,
    table: &Table,
    chain: Option<&str>,
    rulenum: Option<usize>,
    options: &ListOptions,
    counters: &dyn Fn(u32) -> (u64, u64),
) -> Result<String> {
    let format = Format {
        numeric: options.numeric,
        counts: options.verbose,
        via: options.verbose,
        units: !options.exact,
        line_numbers: options.line_numbers,
        notable: false,
    };
    let chains: Vec<&Chain> = match chain {
        Some(name) => vec![table.chain(name).ok_or_else(no_chain)?],
        None => table.chains.iter().collect(),
    };
    let mut out = String::new();
    for (i, chain) in chains.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if rulenum.is_none() {
            header(&mut out, table, chain, format, counters);
        }
        for (num, rule) in (1..).zip(&chain.rules) {
            if rulenum.is_none_or(|n| n == num) {
                firewall(&mut out, db, rule, num, counters(rule.counter), format);
            }
        }
    }
    Ok(out)
}

/// `print_header`
fn header(
    out: &mut String,
    table: &Table,
    chain: &Chain,
    format: Format,
    counters: &dyn Fn(u32) -> (u64, u64),
) {
    let _ = write!(out, "Chain {}", chain.name);
    match chain.policy {
        Some(policy) => {
            let policy = match policy {
                Policy::Accept => "ACCEPT",
                Policy::Drop => "DROP",
            };
            let _ = write!(out, " (policy {policy}");
            if format.counts {
                let (packets, bytes) = counters(chain.policy_counter);
                let inline = Format {
                    notable: true,
                    ..format
                };
                out.push(' ');
                number(out, packets, inline);
                out.push_str("packets, ");
                number(out, bytes, inline);
                out.push_str("bytes");
            }
            out.push_str(")\n");
        }
        None => {
            let _ = writeln!(out, " ({} references)", table.references(&chain.name));
        }
    }
    if format.line_numbers {
        format.column(out, "num", 4, true);
    }
    if format.counts {
        let (packets, bytes) = if format.units { (5, 5) } else { (8, 10) };
        format.column(out, "pkts", packets, false);
        format.column(out, "bytes", bytes, false);
    }
    format.column(out, "target", 9, true);
    out.push_str(" prot opt");
    if format.via {
        let _ = write!(out, " {:<6} {:<6} ", "in", "out");
    }
    let _ = writeln!(out, " {:<19}  {:<19} ", "source", "destination");
}

/// `xtables_print_num`
fn number(out: &mut String, mut n: u64, format: Format) {
    if !format.units {
        format.column(out, n, 8, false);
        return;
    }
    if n <= 99_999 {
        format.column(out, n, 5, false);
        return;
    }
    for unit in ['K', 'M', 'G', 'T'] {
        n = (n + 500) / 1000;
        if n <= 9999 || unit == 'T' {
            let _ = match format.notable {
                true => write!(out, "{n}{unit} "),
                false => write!(out, "{n:>4}{unit} "),
            };
            return;
        }
    }
}

/// `print_firewall`: one rule.
fn firewall(
    out: &mut String,
    db: &NameDb,
    rule: &Rule,
    num: usize,
    (packets, bytes): (u64, u64),
    format: Format,
) {
    if format.line_numbers {
        format.column(out, num, 4, true);
    }
    if format.counts {
        number(out, packets, format);
        number(out, bytes, format);
    }
    format.column(
        out,
        rule.target.as_ref().map_or("", kernel_target_name),
        9,
        true,
    );
    // print_rule_details: the protocol, by number with -n in the table.
    let proto = rule.proto.as_ref().map_or(0, |p| p.value);
    out.push(if rule.proto.as_ref().is_some_and(|p| p.negated) {
        '!'
    } else {
        ' '
    });
    match protocol_name(db, proto, format.numeric) {
        Some(name) if !format.numeric || format.notable => format.column(out, name, 4, true),
        _ => format.column(out, proto, 4, true),
    }
    // print_fragment
    if format.notable {
        out.push_str("opt ");
    }
    out.push_str(match &rule.fragment {
        None => "-- ",
        Some(Negatable { negated: false, .. }) => "-f ",
        Some(Negatable { negated: true, .. }) => "!f ",
    });
    if format.via {
        let any = if format.numeric { "*" } else { "any" };
        let iface = |iface: &Option<Negatable<Interface>>| match iface {
            Some(Negatable {
                value: Interface { name, wildcard },
                negated,
            }) => {
                format!(
                    "{}{name}{}",
                    if *negated { "!" } else { "" },
                    if *wildcard { "+" } else { "" }
                )
            }
            None => any.to_string(),
        };
        let (inbound, outbound) = (iface(&rule.in_iface), iface(&rule.out_iface));
        let _ = match format.notable {
            true => write!(out, "in {inbound} out {outbound} "),
            false => write!(out, " {inbound:<6} {outbound:<6} "),
        };
    }
    for (addr, arrow) in [(&rule.src, ""), (&rule.dst, "-> ")] {
        out.push(if addr.as_ref().is_some_and(|a| a.negated) {
            '!'
        } else {
            ' '
        });
        let text = address(db, addr.as_ref().map(|a| &a.value), format.numeric);
        let _ = match format.notable {
            true if arrow.is_empty() => write!(out, "{text} "),
            true => write!(out, "{arrow}{text}"),
            false => write!(out, "{text:<19} "),
        };
    }
    if format.notable {
        out.push_str("  ");
    }
    if let Some(Target::Goto(_)) = rule.target {
        out.push_str("[goto] ");
    }
    for m in &rule.matches {
        out.push_str(&ext::print(db, rule, m, format.numeric));
    }
    if let Some(target) = &rule.target {
        out.push_str(&ext::target_print(target, format.numeric));
    }
    out.push('\n');
}

/// `ipv4_addr_to_string`: `anywhere`, or the address (named unless numeric) and its mask
/// (`/prefix`, or dotted where not contiguous) unless /32.
fn address(db: &NameDb, net: Option<&AddrMask>, numeric: bool) -> String {
    let any = AddrMask::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
    let net = net.unwrap_or(&any);
    let addr = net.addr;
    if net.mask.is_unspecified() && !numeric {
        return "anywhere".into();
    }
    let name = match numeric {
        true => None,
        false => db
            .host_name(addr)
            .or_else(|| db.network_name(u32::from(addr))),
    };
    let mut text = name.map_or_else(|| addr.to_string(), str::to_string);
    if !net.mask.is_broadcast() {
        let _ = write!(text, "/{}", net.mask_text());
    }
    text
}

#[cfg(test)]
mod tests;
