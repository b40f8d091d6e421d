//! Tables, families, chains and policies.

use serde::{Deserialize, Serialize};

use super::matches::Hashlimit;
use super::rules::Rules;
use pcn_iptables_common::Counter;

/// iptables' tables. pcn-iptables filters with the filter table, translates with the nat
/// table and marks and rewrites with the mangle table; raw has its chains (built-in and
/// user-defined) but no rules yet; security is named only (refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableName {
    Filter,
    Nat,
    Mangle,
    Raw,
    Security,
}

impl TableName {
    pub const ALL: [TableName; 5] = [
        TableName::Filter,
        TableName::Nat,
        TableName::Mangle,
        TableName::Raw,
        TableName::Security,
    ];

    /// The name `-t` takes and iptables-save prints.
    pub fn name(self) -> &'static str {
        match self {
            TableName::Filter => "filter",
            TableName::Nat => "nat",
            TableName::Mangle => "mangle",
            TableName::Raw => "raw",
            TableName::Security => "security",
        }
    }

    pub fn by_name(name: &str) -> Option<TableName> {
        TableName::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The built-in chains, in iptables' listing order.
    pub fn base_chains(self) -> &'static [&'static str] {
        match self {
            TableName::Filter | TableName::Security => &BASE_CHAINS,
            TableName::Nat => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            TableName::Mangle => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            TableName::Raw => &["PREROUTING", "OUTPUT"],
        }
    }

    /// The tables pcn-iptables keeps besides filter (nat and mangle with their rules; raw,
    /// chains and policies only).
    pub const OTHERS: [TableName; 3] = [TableName::Nat, TableName::Mangle, TableName::Raw];

    /// The tables besides filter whose rules and policies count in the data plane.
    pub const COUNTED: [TableName; 3] = [TableName::Nat, TableName::Mangle, TableName::Raw];

    /// Whether the table's rules run and count in the data plane (filter, nat, mangle), or it
    /// keeps its policy counters in the stored state (raw, which has no rules yet).
    pub fn counts_in_dataplane(self) -> bool {
        self == TableName::Filter || TableName::COUNTED.contains(&self)
    }

    /// Whether pcn-iptables has this table (all but security).
    pub fn is_kept(self) -> bool {
        self != TableName::Security
    }
}

/// The address family a ruleset is for: iptables (IPv4) now, ip6tables (IPv6) named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    #[default]
    Ipv4,
    Ipv6,
}

/// libiptc's `IPT_CHAINLABEL` size: `-E` refuses longer names (terminating NUL included).
pub const MAX_CHAIN_LABEL: usize = 32;

/// The base chains of the filter table, in iptables' listing order.
pub const BASE_CHAINS: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];

/// A base chain's default verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Policy {
    Accept,
    Drop,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    /// `Some` for base chains, `None` for user-defined ones.
    pub policy: Option<Policy>,
    /// Counter slot of the policy (base chains only).
    pub policy_counter: u32,
    pub rules: Rules,
}

/// One table's chains. The filter table, the one the compiler and the data plane see, also
/// carries the namespace's other tables (`tables`): the compiler takes nat's chains from there,
/// and the stored state keeps them all with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub chains: Vec<Chain>,
    #[serde(skip)]
    pub tables: Tables,
}

/// The tables besides filter, and which tables the namespace has loaded.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// The tables loaded in the namespace, the most recently loaded first: the order of the
    /// kernel's list, which iptables-legacy-save prints. A table is loaded by the first command
    /// that opens it (a listing too) and stays loaded.
    pub loaded: Vec<TableName>,
    /// nat, mangle and raw as they stand, those that were loaded (raw without
    /// rules).
    pub others: Vec<(TableName, Table)>,
    /// The policy counters of raw (and of a nat or mangle table stored before it counted) that
    /// are not zero, by chain name: set by `-P -c`
    /// or a restore with `-c` (nothing counts there yet). As iptables-legacy does, a table's
    /// next change restarts them. (The nat table counts in the data plane, as filter does;
    /// versions before kept its policies' counts here too.)
    pub counts: Vec<(TableName, String, Counter)>,
    /// The namespace's `-m recent` lists: those the rules name (see `ruleset::recent`).
    pub recent: Vec<RecentList>,
    /// The namespace's `-m hashlimit` tables: those the rules name (see `ruleset::hashlimit`).
    pub hashlimit: Vec<HashlimitTable>,
}

/// A `-m hashlimit` table: its slot in the data plane, and the configuration of the rule
/// that made it, which it keeps while a rule names it (as xt_hashlimit's htable does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashlimitTable {
    pub slot: u16,
    pub config: Hashlimit,
}

/// A `-m recent` list: its slot in the data plane, and what xt_recent fixes when a rule first
/// names it (the mask) or raises (the stamps kept per address, less one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentList {
    pub name: String,
    pub slot: u16,
    pub mask: u32,
    pub stamp_mask: u16,
}

impl Tables {
    /// A table other than filter, as it stands (a new one: its built-in chains, ACCEPT).
    pub fn get(&self, name: TableName) -> Table {
        self.others
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| Table::builtin(name))
    }

    /// Stores `table` as `name`'s chains.
    pub fn set(&mut self, name: TableName, table: Table) {
        match self.others.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t = table,
            None => self.others.push((name, table)),
        }
    }

    /// The policy counters of table `name` that are not zero.
    pub fn counts_of(&self, name: TableName) -> Vec<(String, Counter)> {
        self.counts
            .iter()
            .filter(|(n, _, _)| *n == name)
            .map(|(_, chain, c)| (chain.clone(), *c))
            .collect()
    }

    /// Sets the policy counters of table `name`: `counts`, the others zero.
    pub fn set_counts(&mut self, name: TableName, counts: Vec<(String, Counter)>) {
        self.counts.retain(|(n, _, _)| *n != name);
        self.counts.extend(
            counts
                .into_iter()
                .filter(|(_, c)| c.packets != 0 || c.bytes != 0)
                .map(|(chain, c)| (name, chain, c)),
        );
    }

    /// Table `name` (nat or mangle) as it counts in the data plane, its rules and its policies
    /// in counter slots of their own; `None` when it has none yet (never stored, or stored by
    /// a version before it counted, whose policies had the built-in slots, filter's).
    pub fn counted(&self, name: TableName) -> Option<&Table> {
        self.others
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .filter(|t| {
                t.chains
                    .iter()
                    .all(|c| c.policy.is_none() || c.policy_counter >= FIRST_RULE_COUNTER)
            })
    }

    /// The nat table as it counts in the data plane (see [`Tables::counted`]).
    pub fn nat(&self) -> Option<&Table> {
        self.counted(TableName::Nat)
    }

    /// Table `name` with counter slots of its own: as stored, or else its chains with slots
    /// from `alloc` for its policies, which start from the counts kept for them.
    pub fn counted_in(&self, name: TableName, alloc: &mut dyn FnMut(Counter) -> u32) -> Table {
        if let Some(t) = self.counted(name) {
            return t.clone();
        }
        let mut table = self.get(name);
        let counts = self.counts_of(name);
        for chain in table.chains.iter_mut().filter(|c| c.policy.is_some()) {
            let start = counts
                .iter()
                .find(|(n, _)| *n == chain.name)
                .map_or_else(Counter::default, |(_, c)| *c);
            chain.policy_counter = alloc(start);
        }
        table
    }

    /// Stores `table` as `name`'s, which counts in the data plane (no counts kept for it here).
    pub fn set_counted(&mut self, name: TableName, table: Table) {
        self.set(name, table);
        self.set_counts(name, Vec::new());
    }

    /// Records that `name` was loaded (first in the list); `false` if it already was.
    pub fn load(&mut self, name: TableName) -> bool {
        if self.loaded.contains(&name) {
            return false;
        }
        self.loaded.insert(0, name);
        true
    }
}

/// Counter slots 0..FIRST_RULE_COUNTER belong to the base chains' policies, in BASE_CHAINS order.
pub const FIRST_RULE_COUNTER: u32 = BASE_CHAINS.len() as u32;

impl Default for Table {
    fn default() -> Self {
        Table::builtin(TableName::Filter)
    }
}

impl Table {
    /// A table with its built-in chains only, their policies ACCEPT, counting in slots
    /// 0.. in order (the filter table's slots 0..FIRST_RULE_COUNTER; nat's policies get slots
    /// of their own when it is stored, see [`Tables::counted_in`], as mangle's; raw counts
    /// nothing yet: see [`Table::policy_counts`]).
    pub fn builtin(name: TableName) -> Table {
        Table::of_chains(
            name.base_chains()
                .iter()
                .enumerate()
                .map(|(i, chain)| Chain {
                    name: (*chain).to_string(),
                    policy: Some(Policy::Accept),
                    policy_counter: i as u32,
                    rules: Default::default(),
                })
                .collect(),
        )
    }

    /// A table of `chains`, with no other tables.
    pub fn of_chains(chains: Vec<Chain>) -> Table {
        Table {
            chains,
            tables: Tables::default(),
        }
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chains.iter_mut().find(|c| c.name == name)
    }

    /// Adds a user-defined chain where libiptc keeps it: after the base chains, in byte order
    /// of the names.
    pub fn add_chain(&mut self, chain: Chain) {
        let at = self
            .chains
            .iter()
            .position(|c| c.policy.is_none() && c.name > chain.name)
            .unwrap_or(self.chains.len());
        self.chains.insert(at, chain);
    }

    /// How many rules jump or go to `chain` (`-L`'s "references").
    pub fn references(&self, chain: &str) -> usize {
        (self.chains.iter())
            .map(|c| c.rules.jumps().iter().filter(|j| j.1 == chain).count())
            .sum()
    }

    /// A counter reader for raw: its policies' `counts` (by chain name), zero
    /// elsewhere.
    pub fn policy_counts<'a>(
        &'a self,
        counts: &'a [(String, Counter)],
    ) -> impl Fn(u32) -> (u64, u64) + 'a {
        move |slot| {
            self.chains
                .iter()
                .find(|c| c.policy.is_some() && c.policy_counter == slot)
                .and_then(|c| counts.iter().find(|(name, _)| *name == c.name))
                .map_or((0, 0), |(_, c)| (c.packets, c.bytes))
        }
    }

    /// Every counter slot in use: this table's, and those of the tables it carries that count
    /// in the data plane.
    pub fn counters(&self) -> impl Iterator<Item = u32> + '_ {
        let others = TableName::COUNTED
            .iter()
            .filter_map(|&name| self.tables.counted(name))
            .flat_map(|t| &t.chains);
        self.chains
            .iter()
            .chain(others)
            .flat_map(|c| std::iter::once(c.policy_counter).chain(c.rules.counters()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_load_newest_first_once() {
        let mut t = Tables::default();
        assert!(t.load(TableName::Nat));
        assert!(t.load(TableName::Mangle));
        assert!(!t.load(TableName::Nat));
        assert!(t.load(TableName::Filter));
        assert_eq!(
            t.loaded,
            [TableName::Filter, TableName::Mangle, TableName::Nat]
        );
    }

    #[test]
    fn other_tables_start_with_their_builtin_chains() {
        let t = Tables::default();
        let names =
            |name| -> Vec<String> { t.get(name).chains.into_iter().map(|c| c.name).collect() };
        assert_eq!(
            names(TableName::Nat),
            ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
        );
        assert_eq!(names(TableName::Raw), ["PREROUTING", "OUTPUT"]);
        assert_eq!(names(TableName::Mangle).len(), 5);
        assert!(!TableName::Security.is_kept());
    }

    #[test]
    fn policy_counts_are_per_table_and_restart() {
        let mut t = Tables::default();
        let c = |packets| Counter { packets, bytes: 1 };
        t.set_counts(TableName::Raw, vec![("OUTPUT".into(), c(5))]);
        t.set_counts(
            TableName::Nat,
            vec![
                ("INPUT".into(), c(7)),
                ("OUTPUT".into(), Counter::default()),
            ],
        );
        assert_eq!(t.counts.len(), 2, "zero counts are not kept");
        let raw = t.get(TableName::Raw);
        let counts = t.counts_of(TableName::Raw);
        let read = raw.policy_counts(&counts);
        assert_eq!((read(0), read(1)), ((0, 0), (5, 1)));
        t.set_counts(TableName::Raw, Vec::new());
        assert!(t.counts_of(TableName::Raw).is_empty());
        assert_eq!(t.counts_of(TableName::Nat).len(), 1);
    }
}
