//! The tables the data plane runs as one set of chains: the filter table's, then the nat
//! table's (once loaded) under names no iptables chain can have, so that chain ids, jumps and
//! counters work alike in both.

use pcn_iptables_common::{
    CHAIN_FORWARD, CHAIN_INPUT, CHAIN_NAT_INPUT, CHAIN_NAT_OUTPUT, CHAIN_NAT_POSTROUTING,
    CHAIN_NAT_PREROUTING, CHAIN_OUTPUT, FIXED_CHAINS,
};

use crate::model::{Chain, Table, TableName};

/// Before a nat chain's name (a NUL never comes from a command line or a file).
const NAT_PREFIX: &str = "\0nat:";

/// The chains with a fixed id, in id order.
const FIXED: [&str; FIXED_CHAINS as usize] = [
    "INPUT",
    "FORWARD",
    "OUTPUT",
    "\0nat:PREROUTING",
    "\0nat:INPUT",
    "\0nat:OUTPUT",
    "\0nat:POSTROUTING",
];

const _: () = assert!(
    CHAIN_INPUT == 0
        && CHAIN_FORWARD == 1
        && CHAIN_OUTPUT == 2
        && CHAIN_NAT_PREROUTING == 3
        && CHAIN_NAT_INPUT == 4
        && CHAIN_NAT_OUTPUT == 5
        && CHAIN_NAT_POSTROUTING == 6
);

/// The nat table, if the namespace loaded it (netfilter runs its chains from then on).
pub(super) fn nat(table: &Table) -> Option<&Table> {
    if !table.tables.loaded.contains(&TableName::Nat) {
        return None;
    }
    Some(table.tables.nat().unwrap_or(&BUILTIN_NAT))
}

/// A nat table without counter slots of its own yet: its base chains, ACCEPT, counting
/// nothing.
static BUILTIN_NAT: std::sync::LazyLock<Table> = std::sync::LazyLock::new(|| {
    let mut t = Table::builtin(TableName::Nat);
    for c in &mut t.chains {
        c.policy_counter = u32::MAX;
    }
    t
});

/// The chain the data plane knows as `name`.
pub(super) fn chain<'a>(table: &'a Table, name: &str) -> Option<&'a Chain> {
    match name.strip_prefix(NAT_PREFIX) {
        Some(nat_name) => nat(table)?.chain(nat_name),
        None => table.chain(name),
    }
}

/// The data plane's name of a chain a rule of chain `from` jumps to.
pub(super) fn target_name(from: &str, to: &str) -> String {
    match from.starts_with(NAT_PREFIX) {
        true => format!("{NAT_PREFIX}{to}"),
        false => to.to_string(),
    }
}

/// Whether the data plane always has chain `name` (it keeps its id).
pub(super) fn is_fixed(name: &str) -> bool {
    FIXED.contains(&name)
}

/// Every chain's name: the fixed ones in id order, then the user chains of filter and nat.
pub(super) fn names(table: &Table) -> Vec<String> {
    let mut names: Vec<String> = FIXED.map(String::from).to_vec();
    names.extend(user_chains(table));
    names
}

/// The chains besides the base chains, as the data plane names them.
pub(super) fn user_chains(table: &Table) -> impl Iterator<Item = String> + '_ {
    let filter = table.chains.iter().map(|c| c.name.clone());
    let nat = nat(table)
        .into_iter()
        .flat_map(|t| t.chains.iter().map(|c| format!("{NAT_PREFIX}{}", c.name)));
    filter.chain(nat).filter(|n| !is_fixed(n))
}

/// Every chain's rules by its data plane name.
pub(super) fn chains(table: &Table) -> impl Iterator<Item = (String, &Chain)> + '_ {
    let filter = table.chains.iter().map(|c| (c.name.clone(), c));
    let nat = nat(table).into_iter().flat_map(|t| {
        t.chains
            .iter()
            .map(|c| (format!("{NAT_PREFIX}{}", c.name), c))
    });
    filter.chain(nat)
}
