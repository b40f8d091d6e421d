//! One iptables command line, parsed.

use pcn_iptables_common::Counter;

use crate::error::Result;
use crate::model::{Command, Wait};

/// One iptables command line, parsed.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub command: Command,
    pub wait: Wait,
    /// `-t`: checked by [`Invocation::check_table`] once the privileges are, as iptables
    /// checks it when it opens the table.
    pub table: String,
    /// `-v`: rule commands echo their rules, -F, -Z and -X name each chain (see
    /// [`crate::listing::verbose_echo`]).
    pub verbose: bool,
    /// `-c PKTS BYTES`: the counters new rules, or the policy of `-P`, start from.
    pub counters: Option<Counter>,
}

impl Invocation {
    /// Refuses tables other than filter, as iptables does when it opens the table (after the
    /// lock, so after the privilege check).
    pub fn check_table(&self) -> Result<()> {
        super::names::check_table(&self.table)
    }
}
