//! What `do_parse` accumulates while it reads the options (iptables' `cs`, `p` and `args`).

use pcn_iptables_common::Counter;

use super::getopt::{Getopt, LongOpt};
use super::options::Opt;
use crate::ext::{Ext, Instance};
use crate::model::{Interface, Negatable, Target};
use crate::xtables::netdb::NameDb;

/// A parsed `-i`/`-o` value.
pub(super) type Iface = Negatable<Interface>;

/// What do_parse accumulates, named after iptables' `cs`, `p` and `args` fields.
pub(super) struct Parse<'a> {
    pub(super) db: &'a NameDb,
    pub(super) getopt: Getopt<'a>,
    pub(super) command: u32,
    pub(super) chain: Option<String>,
    pub(super) rulenum: usize,
    pub(super) policy: Option<String>,
    pub(super) options: u32,
    pub(super) invert: bool,
    /// How many `-v`.
    pub(super) verbose: u32,
    pub(super) wait: i64,
    pub(super) wait_interval: bool,
    pub(super) table: String,
    /// `-E`'s new chain name.
    pub(super) new_name: Option<&'a str>,
    pub(super) counters: Option<Counter>,
    pub(super) src: Option<(&'a str, bool)>,
    pub(super) dst: Option<(&'a str, bool)>,
    pub(super) proto: Option<Negatable<u8>>,
    /// `-f`
    pub(super) fragment: Option<Negatable<()>>,
    /// The `-p` text, lower-cased, for loading its match on demand.
    pub(super) protocol: Option<String>,
    pub(super) proto_used: bool,
    pub(super) in_iface: Option<Iface>,
    pub(super) out_iface: Option<Iface>,
    /// The match instances, in `-m` order.
    pub(super) matches: Vec<Instance>,
    /// Matches in the order their options were merged; the newest wins a shared option name.
    pub(super) loaded: Vec<Ext>,
    pub(super) target: Option<Target>,
    /// The target extension `-j` loaded (REJECT, LOG), with its options.
    pub(super) target_ext: Option<Instance>,
    pub(super) warnings: Vec<String>,
    /// `long_options()`, and the (loaded matches, target extension) it was made for: made
    /// again only when they change, not at every option (a restore parses thousands).
    pub(super) long: (Vec<LongOpt<Opt>>, (usize, bool)),
}

impl<'a> Parse<'a> {
    /// Nothing parsed yet of `argv` (the program name first).
    pub(super) fn new(db: &'a NameDb, argv: Vec<&'a str>) -> Parse<'a> {
        Parse {
            db,
            getopt: Getopt::new(argv),
            command: 0,
            chain: None,
            rulenum: 0,
            policy: None,
            options: 0,
            invert: false,
            verbose: 0,
            wait: 0,
            wait_interval: false,
            table: "filter".into(),
            new_name: None,
            counters: None,
            src: None,
            dst: None,
            proto: None,
            fragment: None,
            protocol: None,
            proto_used: false,
            in_iface: None,
            out_iface: None,
            matches: Vec::new(),
            loaded: Vec::new(),
            target: None,
            target_ext: None,
            warnings: Vec::new(),
            long: (Vec::new(), (usize::MAX, false)),
        }
    }
}
