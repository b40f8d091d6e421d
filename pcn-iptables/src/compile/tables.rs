//! The tables the data plane runs as one set of chains: the filter table's, then the nat and
//! mangle tables' (once loaded) under names no iptables chain can have, so that chain ids,
//! jumps and counters work alike in all of them.

use pcn_iptables_common::{
    CHAIN_FORWARD, CHAIN_INPUT, CHAIN_MANGLE_FORWARD, CHAIN_MANGLE_INPUT, CHAIN_MANGLE_OUTPUT,
    CHAIN_MANGLE_POSTROUTING, CHAIN_MANGLE_PREROUTING, CHAIN_NAT_INPUT, CHAIN_NAT_OUTPUT,
    CHAIN_NAT_POSTROUTING, CHAIN_NAT_PREROUTING, CHAIN_OUTPUT, CHAIN_RAW_OUTPUT,
    CHAIN_RAW_PREROUTING, FIXED_CHAINS,
};

use crate::model::{Chain, Table, TableName};

/// The tables besides filter the data plane runs, each with the prefix of its chains' names
/// (a NUL never comes from a command line or a file).
const PREFIXED: [(TableName, &str); 3] = [
    (TableName::Nat, "\0nat:"),
    (TableName::Mangle, "\0mangle:"),
    (TableName::Raw, "\0raw:"),
];

/// The chains with a fixed id, in id order.
const FIXED: [&str; FIXED_CHAINS as usize] = [
    "INPUT",
    "FORWARD",
    "OUTPUT",
    "\0nat:PREROUTING",
    "\0nat:INPUT",
    "\0nat:OUTPUT",
    "\0nat:POSTROUTING",
    "\0mangle:PREROUTING",
    "\0mangle:INPUT",
    "\0mangle:FORWARD",
    "\0mangle:OUTPUT",
    "\0mangle:POSTROUTING",
    "\0raw:PREROUTING",
    "\0raw:OUTPUT",
];

const _: () = assert!(
    CHAIN_INPUT == 0
        && CHAIN_FORWARD == 1
        && CHAIN_OUTPUT == 2
        && CHAIN_NAT_PREROUTING == 3
        && CHAIN_NAT_INPUT == 4
        && CHAIN_NAT_OUTPUT == 5
        && CHAIN_NAT_POSTROUTING == 6
        && CHAIN_MANGLE_PREROUTING == 7
        && CHAIN_MANGLE_INPUT == 8
        && CHAIN_MANGLE_FORWARD == 9
        && CHAIN_MANGLE_OUTPUT == 10
        && CHAIN_MANGLE_POSTROUTING == 11
        && CHAIN_RAW_PREROUTING == 12
        && CHAIN_RAW_OUTPUT == 13
);

/// Table `name` (nat or mangle), if the namespace loaded it (netfilter runs its chains from
/// then on).
pub(super) fn loaded(table: &Table, name: TableName) -> Option<&Table> {
    if !table.tables.loaded.contains(&name) {
        return None;
    }
    Some(table.tables.counted(name).unwrap_or(match name {
        TableName::Nat => &BUILTIN_NAT,
        TableName::Mangle => &BUILTIN_MANGLE,
        _ => &BUILTIN_RAW,
    }))
}

/// The nat table, if the namespace loaded it.
pub(super) fn nat(table: &Table) -> Option<&Table> {
    loaded(table, TableName::Nat)
}

/// A table without counter slots of its own yet: its base chains, ACCEPT, counting nothing.
fn uncounted(name: TableName) -> Table {
    let mut t = Table::builtin(name);
    for c in &mut t.chains {
        c.policy_counter = u32::MAX;
    }
    t
}

static BUILTIN_NAT: std::sync::LazyLock<Table> =
    std::sync::LazyLock::new(|| uncounted(TableName::Nat));
static BUILTIN_MANGLE: std::sync::LazyLock<Table> =
    std::sync::LazyLock::new(|| uncounted(TableName::Mangle));
static BUILTIN_RAW: std::sync::LazyLock<Table> =
    std::sync::LazyLock::new(|| uncounted(TableName::Raw));

/// The chain the data plane knows as `name`.
pub(super) fn chain<'a>(table: &'a Table, name: &str) -> Option<&'a Chain> {
    for (t, prefix) in PREFIXED {
        if let Some(name) = name.strip_prefix(prefix) {
            return loaded(table, t)?.chain(name);
        }
    }
    table.chain(name)
}

/// The data plane's name of a chain a rule of chain `from` jumps to.
pub(super) fn target_name(from: &str, to: &str) -> String {
    match PREFIXED.iter().find(|(_, p)| from.starts_with(p)) {
        Some((_, prefix)) => format!("{prefix}{to}"),
        None => to.to_string(),
    }
}

/// Whether the data plane always has chain `name` (it keeps its id).
pub(super) fn is_fixed(name: &str) -> bool {
    FIXED.contains(&name)
}

/// Every chain's name: the fixed ones in id order, then the user chains of every table.
pub(super) fn names(table: &Table) -> Vec<String> {
    let mut names: Vec<String> = FIXED.map(String::from).to_vec();
    names.extend(user_chains(table));
    names
}

/// The chains besides the base chains, as the data plane names them.
pub(super) fn user_chains(table: &Table) -> impl Iterator<Item = String> + '_ {
    chains(table).map(|(name, _)| name).filter(|n| !is_fixed(n))
}

/// Every chain's rules by its data plane name.
pub(super) fn chains(table: &Table) -> impl Iterator<Item = (String, &Chain)> + '_ {
    let filter = table.chains.iter().map(|c| (c.name.clone(), c));
    let others = PREFIXED.into_iter().flat_map(move |(t, prefix)| {
        loaded(table, t).into_iter().flat_map(move |t| {
            t.chains
                .iter()
                .map(move |c| (format!("{prefix}{}", c.name), c))
        })
    });
    filter.chain(others)
}
