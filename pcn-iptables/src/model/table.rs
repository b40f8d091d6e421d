//! Tables, families, chains and policies.

use serde::{Deserialize, Serialize};

use super::matches::Target;
use super::rule::Rule;

/// iptables' tables. pcn-iptables implements filter; the others are named so that the rest of
/// the house can grow into them (the command line refuses them today, as before).
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
    pub rules: Vec<Rule>,
}

/// The filter table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub chains: Vec<Chain>,
}

/// Counter slots 0..FIRST_RULE_COUNTER belong to the base chains' policies, in BASE_CHAINS order.
pub const FIRST_RULE_COUNTER: u32 = BASE_CHAINS.len() as u32;

impl Default for Table {
    fn default() -> Self {
        Table {
            chains: BASE_CHAINS
                .iter()
                .enumerate()
                .map(|(i, name)| Chain {
                    name: (*name).to_string(),
                    policy: Some(Policy::Accept),
                    policy_counter: i as u32,
                    rules: Vec::new(),
                })
                .collect(),
        }
    }
}

impl Table {
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
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|r| r.target.as_ref().and_then(Target::chain) == Some(chain))
            .count()
    }

    /// Every counter slot in use.
    pub fn counters(&self) -> impl Iterator<Item = u32> + '_ {
        self.chains.iter().flat_map(|c| {
            std::iter::once(c.policy_counter).chain(c.rules.iter().map(|r| r.counter))
        })
    }
}
