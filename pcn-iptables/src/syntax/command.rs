//! iptables 1.8.9's `do_parse` and `ipv4_post_parse`: options in command-line order, with
//! their checks and messages in the order iptables makes them.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use pcn_iptables_common::Counter;

use super::extensions::{self, Ext, Instance};
use super::getopt::{Getopt, Got, HasArg, LongOpt};
use super::netdb::NameDb;
use super::value;
use super::{Command, Invocation, ListOptions, Wait, Zeroing};
use crate::error::{Error, OTHER_PROBLEM, Result, VERSION_PROBLEM};
use crate::ruleset::model::{
    BASE_CHAINS, IPPROTO_TCP, IPPROTO_UDP, Interface, Match, Negatable, Policy, PortRange, Rule,
    StateModule, Target, TcpFlags,
};
use pcn_iptables_common::conntrack::ctstate;

/// The commands, as the bits of iptables' `CMD_*` (the bit order gives `cmd2char`).
mod cmd {
    pub const INSERT: u32 = 1 << 0;
    pub const DELETE: u32 = 1 << 1;
    pub const DELETE_NUM: u32 = 1 << 2;
    pub const REPLACE: u32 = 1 << 3;
    pub const APPEND: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const FLUSH: u32 = 1 << 6;
    pub const ZERO: u32 = 1 << 7;
    pub const NEW_CHAIN: u32 = 1 << 8;
    pub const DELETE_CHAIN: u32 = 1 << 9;
    pub const SET_POLICY: u32 = 1 << 10;
    pub const RENAME_CHAIN: u32 = 1 << 11;
    pub const LIST_RULES: u32 = 1 << 12;
    pub const ZERO_NUM: u32 = 1 << 13;
    pub const CHECK: u32 = 1 << 14;
    /// The commands that take a rule specification.
    pub const RULE: u32 = INSERT | DELETE | REPLACE | APPEND | CHECK;
    pub const LETTERS: [char; 15] = [
        'I', 'D', 'D', 'R', 'A', 'L', 'F', 'Z', 'N', 'X', 'P', 'E', 'S', 'Z', 'C',
    ];
}

/// The options `generic_opt_check` knows, as the bits of iptables' `OPT_*`, and their letters.
mod opt {
    pub const NUMERIC: u32 = 1 << 0;
    pub const SOURCE: u32 = 1 << 1;
    pub const DESTINATION: u32 = 1 << 2;
    pub const PROTOCOL: u32 = 1 << 3;
    pub const JUMP: u32 = 1 << 4;
    pub const VERBOSE: u32 = 1 << 5;
    pub const EXPANDED: u32 = 1 << 6;
    pub const VIANAMEIN: u32 = 1 << 7;
    pub const VIANAMEOUT: u32 = 1 << 8;
    pub const LINENUMBERS: u32 = 1 << 9;
    pub const COUNTERS: u32 = 1 << 10;
    pub const FRAGMENT: u32 = 1 << 11;
    pub const LETTERS: [char; 12] = ['n', 's', 'd', 'p', 'j', 'v', 'x', 'i', 'o', '0', 'c', 'f'];
    /// The options that take `!` before them.
    pub const INVERTIBLE: u32 = SOURCE | DESTINATION | PROTOCOL | VIANAMEIN | VIANAMEOUT | FRAGMENT;
}

/// iptables' `commands_v_options`: `x` illegal, ` ` allowed; columns in `opt::LETTERS` order.
const LEGAL: [(u32, &str); 15] = [
    (cmd::INSERT, "x     x  x  "),
    (cmd::DELETE, "x     x  xx "),
    (cmd::DELETE_NUM, "xxxxx xxxxxx"),
    (cmd::REPLACE, "x     x  x  "),
    (cmd::APPEND, "x     x  x  "),
    (cmd::LIST, " xxxx  xx xx"),
    (cmd::FLUSH, "xxxxx xxxxxx"),
    (cmd::ZERO, "xxxxx xxxxxx"),
    (cmd::NEW_CHAIN, "xxxxx xxxxxx"),
    (cmd::DELETE_CHAIN, "xxxxx xxxxxx"),
    (cmd::SET_POLICY, "xxxxx xxxx x"),
    (cmd::RENAME_CHAIN, "xxxxx xxxxxx"),
    (cmd::LIST_RULES, "xxxxx xxxxxx"),
    (cmd::ZERO_NUM, "xxxxx xxxxxx"),
    (cmd::CHECK, "x     x  xx "),
];

/// The match modules pcn-iptables implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Module {
    Tcp,
    Udp,
    /// `-m conntrack`: `--ctstate` (its other options are refused).
    Conntrack,
    /// `-m state`: `--state` (libxt_conntrack's alias of conntrack).
    State,
    /// The extensions of [`extensions`].
    Ext(Ext),
}

/// libxt_conntrack's options other than `--ctstate` (revision 3, in its order), which
/// pcn-iptables does not implement. They are known to getopt all the same, so that
/// abbreviations are as ambiguous as in iptables.
const CONNTRACK_OTHER_OPTIONS: [&str; 12] = [
    "ctproto",
    "ctorigsrc",
    "ctorigdst",
    "ctreplsrc",
    "ctrepldst",
    "ctstatus",
    "ctexpire",
    "ctorigsrcport",
    "ctorigdstport",
    "ctreplsrcport",
    "ctrepldstport",
    "ctdir",
];

impl Module {
    fn by_name(name: &str) -> Option<Module> {
        match name {
            "tcp" => Some(Module::Tcp),
            "udp" => Some(Module::Udp),
            "conntrack" => Some(Module::Conntrack),
            "state" => Some(Module::State),
            _ => Ext::match_by_name(name).map(Module::Ext),
        }
    }

    /// The match `-p NAME` loads on demand (tcp, udp, icmp), by the protocol's name.
    fn by_protocol(name: &str) -> Option<Module> {
        Module::by_name(name).filter(|m| m.proto().is_some() || *m == Module::Ext(Ext::Icmp))
    }

    /// The protocol of a port match.
    fn proto(self) -> Option<u8> {
        match self {
            Module::Tcp => Some(IPPROTO_TCP),
            Module::Udp => Some(IPPROTO_UDP),
            Module::Conntrack | Module::State | Module::Ext(_) => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Module::Tcp => "tcp",
            Module::Udp => "udp",
            Module::Conntrack => "conntrack",
            Module::State => "state",
            Module::Ext(ext) => ext.name(),
        }
    }

    /// The module's long options (libxt_tcp.c, libxt_udp.c, libxt_conntrack.c).
    fn options(self) -> Vec<LongOpt<Opt>> {
        let required = |name, val| LongOpt {
            name,
            has_arg: HasArg::Required,
            val,
        };
        match self {
            Module::Conntrack => {
                return std::iter::once(required("ctstate", Opt::States(self)))
                    .chain(
                        CONNTRACK_OTHER_OPTIONS
                            .iter()
                            .map(|&name| required(name, Opt::Unsupported(name))),
                    )
                    .collect();
            }
            Module::State => return vec![required("state", Opt::States(self))],
            Module::Ext(ext) => return ext_options(ext),
            Module::Tcp | Module::Udp => {}
        }
        let port = |name, dir| required(name, Opt::Port(self, dir));
        let mut opts = vec![
            port("source-port", Dir::Source),
            port("sport", Dir::Source),
            port("destination-port", Dir::Destination),
            port("dport", Dir::Destination),
        ];
        if self == Module::Tcp {
            opts.extend([
                LongOpt {
                    name: "syn",
                    has_arg: HasArg::No,
                    val: Opt::Syn,
                },
                required("tcp-flags", Opt::TcpFlags),
                required("tcp-option", Opt::Unsupported("tcp-option")),
            ]);
        }
        opts
    }
}

/// An extension's options for getopt.
fn ext_options(ext: Ext) -> Vec<LongOpt<Opt>> {
    ext.entries()
        .iter()
        .map(|e| LongOpt {
            name: e.name,
            has_arg: e.has_arg,
            val: Opt::Ext(ext, e.id),
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Source,
    Destination,
}

/// An option as getopt returns it: iptables' own, or one of a loaded match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    /// A letter of iptables' optstring (long options map to their letter).
    Letter(char),
    /// `--line-numbers` (iptables' `'0'`).
    LineNumbers,
    Port(Module, Dir),
    /// `--ctstate` / `--state`.
    States(Module),
    /// tcp's `--syn` and `--tcp-flags`.
    Syn,
    TcpFlags,
    /// An option of an extension of [`extensions`], by its id.
    Ext(Ext, u8),
    /// A match's option that pcn-iptables does not implement (tcp's `--syn`, conntrack's
    /// `--ctproto`...).
    Unsupported(&'static str),
}

/// iptables 1.8.9's optstring `-:A:C:D:E:F::I:L::M:N:P:VX::Z::c:h::m:nvw::xR:S::W::46bd:fg:i:j:o:p:s:t:`.
fn short_option(c: char) -> Option<(Opt, HasArg)> {
    let has_arg = match c {
        'A' | 'C' | 'D' | 'E' | 'I' | 'M' | 'N' | 'P' | 'c' | 'm' | 'R' | 'd' | 'g' | 'i' | 'j'
        | 'o' | 'p' | 's' | 't' => HasArg::Required,
        'F' | 'L' | 'X' | 'Z' | 'h' | 'w' | 'S' | 'W' => HasArg::Optional,
        'V' | 'n' | 'v' | 'x' | '4' | '6' | 'b' | 'f' => HasArg::No,
        _ => return None,
    };
    Some((Opt::Letter(c), has_arg))
}

/// iptables 1.8.9's `original_opts`.
const LONG_OPTIONS: [(&str, HasArg, char); 37] = [
    ("append", HasArg::Required, 'A'),
    ("delete", HasArg::Required, 'D'),
    ("check", HasArg::Required, 'C'),
    ("insert", HasArg::Required, 'I'),
    ("replace", HasArg::Required, 'R'),
    ("list", HasArg::Optional, 'L'),
    ("list-rules", HasArg::Optional, 'S'),
    ("flush", HasArg::Optional, 'F'),
    ("zero", HasArg::Optional, 'Z'),
    ("new-chain", HasArg::Required, 'N'),
    ("delete-chain", HasArg::Optional, 'X'),
    ("rename-chain", HasArg::Required, 'E'),
    ("policy", HasArg::Required, 'P'),
    ("source", HasArg::Required, 's'),
    ("destination", HasArg::Required, 'd'),
    ("src", HasArg::Required, 's'),
    ("dst", HasArg::Required, 'd'),
    ("protocol", HasArg::Required, 'p'),
    ("in-interface", HasArg::Required, 'i'),
    ("jump", HasArg::Required, 'j'),
    ("table", HasArg::Required, 't'),
    ("match", HasArg::Required, 'm'),
    ("numeric", HasArg::No, 'n'),
    ("out-interface", HasArg::Required, 'o'),
    ("verbose", HasArg::No, 'v'),
    ("wait", HasArg::Optional, 'w'),
    ("wait-interval", HasArg::Optional, 'W'),
    ("exact", HasArg::No, 'x'),
    ("fragments", HasArg::No, 'f'),
    ("version", HasArg::No, 'V'),
    ("help", HasArg::Optional, 'h'),
    ("line-numbers", HasArg::No, '0'),
    ("modprobe", HasArg::Required, 'M'),
    ("set-counters", HasArg::Required, 'c'),
    ("goto", HasArg::Required, 'g'),
    ("ipv4", HasArg::No, '4'),
    ("ipv6", HasArg::No, '6'),
];

/// Target extensions of iptables 1.8.9 for IPv4 (`-j NAME` loads them instead of jumping).
#[rustfmt::skip]
const EXTENSION_TARGETS: [&str; 36] = [
    "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT",
    "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE", "NETMAP", "NFLOG",
    "NFQUEUE", "NOTRACK", "QUEUE", "RATEEST", "REDIRECT", "REJECT", "SECMARK", "SET", "SNAT",
    "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
];

/// Match extensions of iptables 1.8.9 for IPv4 other than those of [`Module`].
#[rustfmt::skip]
const EXTENSION_MATCHES: [&str; 39] = [
    "ah", "bpf", "cgroup", "cluster", "connbytes", "connlabel", "connlimit", "connmark", "cpu",
    "dccp", "devgroup", "dscp", "ecn", "esp", "hashlimit", "helper", "ipcomp", "ipvs", "mark",
    "nfacct", "osf", "owner", "physdev", "pkttype", "policy", "quota", "rateest", "realm",
    "recent", "rpfilter", "sctp", "set", "socket", "statistic", "string", "tcpmss", "time",
    "tos", "u32",
];

/// Long options of the protocol matches `-p` loads on demand that pcn-iptables lacks.
#[rustfmt::skip]
const PROTOCOL_MATCH_OPTIONS: [(&str, &[&str]); 5] = [
    ("sctp", &["source-port", "sport", "destination-port", "dport", "chunk-types"]),
    ("dccp", &["source-port", "sport", "destination-port", "dport", "dccp-types", "dccp-option"]),
    ("esp", &["espspi"]),
    ("ah", &["ahspi"]),
    ("ipcomp", &["ipcompspi", "compres"]),
];

/// Whether `xtables_find_target` finds a target by this name: the standard target (under
/// `""`, `standard` and the verdicts it stands for) or a target extension.
fn is_target(name: &str) -> bool {
    matches!(
        name,
        "" | "standard" | "ACCEPT" | "DROP" | "QUEUE" | "RETURN"
    ) || EXTENSION_TARGETS.contains(&name)
}

/// The other tables of iptables' filter/nat/mangle/raw/security set.
const OTHER_TABLES: [&str; 4] = ["nat", "mangle", "raw", "security"];

/// xtables' `XT_EXTENSION_MAXNAMELEN`: names are shorter than this.
const MAX_NAME: usize = 29;
/// libiptc's `IPT_CHAINLABEL` size: `-E` refuses longer names (terminating NUL included).
pub const MAX_CHAIN_LABEL: usize = 32;
/// The kernel's `IFNAMSIZ`, terminating NUL included.
const IFNAMSIZ: usize = 16;

fn param(message: impl Into<String>) -> Error {
    Error::parameter(message)
}

pub(super) fn unsupported(what: impl std::fmt::Display) -> Error {
    param(format!("{what} is not supported by pcn-iptables"))
}

/// "Bad argument `x'" comes without iptables' usual "iptables v1.8.9 (legacy): " prefix.
fn bad_argument(arg: &str) -> Error {
    Error::try_help(format!("Bad argument `{arg}'"))
}

/// One instance of a match module, in `-m` order.
#[derive(Debug)]
struct MatchState {
    module: Module,
    sport: Option<Negatable<PortRange>>,
    dport: Option<Negatable<PortRange>>,
    sport_seen: bool,
    dport_seen: bool,
    /// `--ctstate` / `--state`: the states as `1 << ctstate::*` bits.
    states: Option<Negatable<u8>>,
    /// tcp's `--tcp-flags` or `--syn`.
    tcp_flags: Option<Negatable<TcpFlags>>,
    /// The instance of a [`Module::Ext`].
    ext: Option<Instance>,
}

/// A parsed `-i`/`-o` value.
type Iface = Negatable<Interface>;

/// What do_parse accumulates, named after iptables' `cs`, `p` and `args` fields.
struct Parse<'a> {
    db: &'a NameDb,
    getopt: Getopt<'a>,
    command: u32,
    chain: Option<String>,
    rulenum: usize,
    policy: Option<String>,
    options: u32,
    invert: bool,
    /// How many `-v`.
    verbose: u32,
    wait: i64,
    wait_interval: bool,
    table: String,
    /// `-E`'s new chain name.
    new_name: Option<&'a str>,
    counters: Option<Counter>,
    src: Option<(&'a str, bool)>,
    dst: Option<(&'a str, bool)>,
    proto: Option<Negatable<u8>>,
    /// `-f`
    fragment: Option<Negatable<()>>,
    /// The `-p` text, lower-cased, for loading its match on demand.
    protocol: Option<String>,
    proto_used: bool,
    in_iface: Option<Iface>,
    out_iface: Option<Iface>,
    matches: Vec<MatchState>,
    /// Modules in the order their options were merged; the newest wins a shared option name.
    loaded: Vec<Module>,
    target: Option<Target>,
    /// The target extension `-j` loaded (REJECT, LOG), with its options.
    target_ext: Option<Instance>,
    warnings: Vec<String>,
    /// `long_options()`, and the (loaded matches, target extension) it was made for: made
    /// again only when they change, not at every option (a restore parses thousands).
    long: (Vec<LongOpt<Opt>>, (usize, bool)),
}

/// Parses `args`, the arguments after `argv0` (which some messages quote); also returns the
/// warnings iptables would print.
pub fn parse(db: &NameDb, argv0: &str, args: &[String]) -> (Result<Invocation>, Vec<String>) {
    let argv = std::iter::once(argv0)
        .chain(args.iter().map(String::as_str))
        .collect();
    let mut p = Parse {
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
    };
    let result = p.run();
    (result, p.warnings)
}

impl<'a> Parse<'a> {
    fn run(&mut self) -> Result<Invocation> {
        loop {
            let key = (self.loaded.len(), self.target_ext.is_some());
            if self.long.1 != key {
                self.long = (self.long_options(), key);
            }
            let got = self.getopt.next(short_option, &self.long.0);
            match got {
                Got::End => break,
                Got::NonOption("!") => {
                    if self.invert {
                        return Err(param("multiple consecutive ! not allowed"));
                    }
                    self.invert = true;
                    continue;
                }
                Got::NonOption(arg) => return Err(bad_argument(arg)),
                // Both answer at once, whatever follows.
                Got::Opt(Opt::Letter('h'), _) => return self.help(),
                Got::Opt(Opt::Letter('V'), _) => {
                    return Ok(self.answer(Command::Version {
                        negated: self.invert,
                    }));
                }
                Got::Opt(opt, optarg) => self.option(opt, optarg)?,
                Got::Missing | Got::Unknown => {
                    if self.load_proto(got == Got::Unknown)? {
                        self.getopt.rewind();
                        continue;
                    }
                    let last = self.getopt.last();
                    return Err(param(match got {
                        Got::Missing => format!("option \"{last}\" requires an argument"),
                        _ => format!("unknown option \"{last}\""),
                    }));
                }
            }
            self.invert = false;
        }
        self.finish()
    }

    /// `-h`: the help of the matches given so far, or else of the match named by `-p`
    /// (`iptables -p tcp -h`), and of the standard target when `-j` named a verdict.
    fn help(&self) -> Result<Invocation> {
        let mut matches: Vec<&'static str> = self.matches.iter().map(|m| m.module.name()).collect();
        if let (true, Some(protocol)) = (matches.is_empty(), self.protocol.as_deref()) {
            match Module::by_protocol(protocol) {
                Some(module) => matches.push(module.name()),
                None if PROTOCOL_MATCH_OPTIONS.iter().any(|(m, _)| *m == protocol) => {
                    return Err(unsupported(format_args!("match `{protocol}'")));
                }
                None => {}
            }
        }
        let target = match (&self.target_ext, &self.target) {
            (Some(t), _) => Some(t.ext.name()),
            (None, Some(Target::Accept | Target::Drop | Target::Return)) => Some("standard"),
            _ => None,
        };
        Ok(self.answer(Command::Help { target, matches }))
    }

    /// An invocation that only prints (`-h`, `-V`).
    fn answer(&self, command: Command) -> Invocation {
        Invocation {
            command,
            wait: Wait::NoWait,
            table: self.table.clone(),
            verbose: false,
            counters: None,
        }
    }

    /// getopt's long options: iptables' own, then the loaded matches', newest first.
    fn long_options(&self) -> Vec<LongOpt<Opt>> {
        let own = LONG_OPTIONS.iter().map(|&(name, has_arg, c)| LongOpt {
            name,
            has_arg,
            val: if c == '0' {
                Opt::LineNumbers
            } else {
                Opt::Letter(c)
            },
        });
        own.chain(self.loaded.iter().rev().flat_map(|m| m.options()))
            .chain(self.target_ext.iter().flat_map(|t| ext_options(t.ext)))
            .collect()
    }

    /// iptables' `load_proto`: an option nobody knows loads the match named by `-p`, once.
    /// Returns whether a match was loaded (the option is then parsed again).
    fn load_proto(&mut self, unknown: bool) -> Result<bool> {
        let Some(protocol) = self.protocol.clone() else {
            return Ok(false);
        };
        if self.proto_used {
            return Ok(false);
        }
        self.proto_used = true;
        let name = match value::xtables_uint(&protocol, 0, 255) {
            Some(n) => {
                let numeric = self.options & opt::NUMERIC != 0;
                match value::protocol_name(self.db, n as u8, numeric) {
                    Some(name) => name.to_string(),
                    None => return Ok(false),
                }
            }
            None => protocol,
        };
        if let Some(module) = Module::by_protocol(&name) {
            self.add_match(module);
            return Ok(true);
        }
        // A protocol match pcn-iptables lacks: refuse its options by name.
        let option = self
            .getopt
            .last()
            .strip_prefix("--")
            .map(|o| o.split('=').next().unwrap_or(o));
        let known = PROTOCOL_MATCH_OPTIONS.iter().find(|(m, _)| *m == name);
        if let (true, Some(option), Some((_, names))) = (unknown, option, known)
            && names.iter().any(|n| n.starts_with(option))
        {
            return Err(unsupported(format_args!("match `{name}'")));
        }
        Ok(false)
    }

    fn add_match(&mut self, module: Module) {
        self.matches.push(MatchState {
            module,
            sport: None,
            dport: None,
            sport_seen: false,
            dport_seen: false,
            states: None,
            tcp_flags: None,
            ext: match module {
                Module::Ext(ext) => Some(Instance::new(ext)),
                _ => None,
            },
        });
        if !self.loaded.contains(&module) {
            self.loaded.push(module);
        }
    }

    /// `add_command`
    fn add_command(&mut self, new: u32, others: u32) -> Result<()> {
        if self.invert {
            return Err(param("unexpected '!' flag"));
        }
        let clash = self.command & !others;
        if clash != 0 {
            let letter = |bits: u32| cmd::LETTERS[(31 - bits.leading_zeros()) as usize];
            return Err(param(format!(
                "Cannot use -{} with -{}",
                letter(new),
                letter(clash)
            )));
        }
        self.command |= new;
        Ok(())
    }

    /// `set_option`
    fn set_option(&mut self, option: u32) -> Result<()> {
        let letter = opt::LETTERS[option.trailing_zeros() as usize];
        if self.options & option != 0 {
            return Err(param(format!("multiple -{letter} flags not allowed")));
        }
        self.options |= option;
        if self.invert && option & opt::INVERTIBLE == 0 {
            return Err(param(format!("cannot have ! before -{letter}")));
        }
        Ok(())
    }

    /// A rule number argument (`parse_rulenumber`).
    fn rule_number(text: &str) -> Result<usize> {
        value::xtables_uint(text, 1, i32::MAX as u64)
            .map(|n| n as usize)
            .ok_or_else(|| param(format!("Invalid rule number `{text}'")))
    }

    /// `-L`, `-S`, `-F`, `-Z`: an optional chain, attached or next.
    fn optional_chain(&mut self, optarg: Option<&str>) {
        if let Some(chain) = optarg.or_else(|| self.getopt.take_optional()) {
            self.chain = Some(chain.to_string());
        }
    }

    fn option(&mut self, opt: Opt, optarg: Option<&'a str>) -> Result<()> {
        let required = || optarg.expect("getopt gives required arguments");
        // -p, -s, -d, -i, -o and -j read argv[optind - 1] in iptables 1.8.9, which is the whole
        // element when the value is attached (`-ptcp` is protocol "-ptcp").
        let element = self.getopt.last();
        let letter = match opt {
            Opt::Letter(c) => c,
            Opt::LineNumbers => return self.set_option(opt::LINENUMBERS),
            Opt::Port(module, dir) => return self.port_option(module, dir, required()),
            Opt::States(module) => return self.states_option(module, required()),
            Opt::Syn => return self.tcp_flags_option(None),
            Opt::TcpFlags => return self.tcp_flags_option(Some(required())),
            Opt::Ext(ext, id) => return self.ext_option(ext, id, optarg),
            Opt::Unsupported(name) => {
                return Err(unsupported(format_args!("option \"--{name}\"")));
            }
        };
        match letter {
            'A' | 'C' => {
                let new = match letter {
                    'A' => cmd::APPEND,
                    _ => cmd::CHECK,
                };
                self.add_command(new, 0)?;
                self.chain = Some(required().to_string());
            }
            'D' => {
                self.add_command(cmd::DELETE, 0)?;
                self.chain = Some(required().to_string());
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                    self.command = cmd::DELETE_NUM;
                }
            }
            'R' => {
                self.add_command(cmd::REPLACE, 0)?;
                self.chain = Some(required().to_string());
                let n = self
                    .getopt
                    .take_optional()
                    .ok_or_else(|| param("-R requires a rule number"))?;
                self.rulenum = Self::rule_number(n)?;
            }
            'I' => {
                self.add_command(cmd::INSERT, 0)?;
                self.chain = Some(required().to_string());
                self.rulenum = match self.getopt.take_optional() {
                    Some(n) => Self::rule_number(n)?,
                    None => 1,
                };
            }
            'L' | 'S' => {
                let new = match letter {
                    'L' => cmd::LIST,
                    _ => cmd::LIST_RULES,
                };
                self.add_command(new, cmd::ZERO | cmd::ZERO_NUM)?;
                self.optional_chain(optarg);
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                }
            }
            'F' => {
                self.add_command(cmd::FLUSH, 0)?;
                self.optional_chain(optarg);
            }
            'Z' => {
                self.add_command(cmd::ZERO, cmd::LIST | cmd::LIST_RULES)?;
                self.optional_chain(optarg);
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                    self.command = cmd::ZERO_NUM;
                }
            }
            'P' => {
                self.add_command(cmd::SET_POLICY, 0)?;
                self.chain = Some(required().to_string());
                let policy = self
                    .getopt
                    .take_optional()
                    .ok_or_else(|| param("-P requires a chain and a policy"))?;
                self.policy = Some(policy.to_string());
            }
            'N' => {
                let chain = required();
                valid_chain_name(chain)?;
                self.add_command(cmd::NEW_CHAIN, 0)?;
                self.chain = Some(chain.to_string());
            }
            'X' => {
                self.add_command(cmd::DELETE_CHAIN, 0)?;
                self.optional_chain(optarg);
            }
            'E' => {
                self.add_command(cmd::RENAME_CHAIN, 0)?;
                self.chain = Some(required().to_string());
                self.new_name = Some(
                    self.getopt
                        .take_optional()
                        .ok_or_else(|| param("-E requires old-chain-name and new-chain-name"))?,
                );
            }
            'p' => {
                self.set_option(opt::PROTOCOL)?;
                let text = element.to_ascii_lowercase();
                let proto = value::protocol(self.db, &text)
                    .ok_or_else(|| param(format!("unknown protocol \"{text}\" specified")))?;
                if proto == 0 && self.invert {
                    return Err(param("rule would never match protocol"));
                }
                self.proto = Some(Negatable {
                    value: proto,
                    negated: self.invert,
                });
                self.protocol = Some(text);
            }
            's' => {
                self.set_option(opt::SOURCE)?;
                self.src = Some((element, self.invert));
            }
            'd' => {
                self.set_option(opt::DESTINATION)?;
                self.dst = Some((element, self.invert));
            }
            'g' => {
                self.set_option(opt::JUMP)?;
                self.target = Some(Target::Goto(target_name(required())?.to_string()));
            }
            'j' => {
                self.set_option(opt::JUMP)?;
                let name = target_name(element)?;
                match Ext::target_by_name(name) {
                    Some(ext) => self.target_ext = Some(Instance::new(ext)),
                    None => self.target = Some(jump_target(name)?),
                }
            }
            'i' => self.in_iface = Some(self.via(opt::VIANAMEIN, required(), element)?),
            'o' => self.out_iface = Some(self.via(opt::VIANAMEOUT, required(), element)?),
            'f' => {
                self.set_option(opt::FRAGMENT)?;
                self.fragment = Some(Negatable {
                    value: (),
                    negated: self.invert,
                });
            }
            'v' => {
                if self.verbose == 0 {
                    self.set_option(opt::VERBOSE)?;
                }
                self.verbose += 1;
            }
            'm' => {
                if self.invert {
                    return Err(param("unexpected ! flag before --match"));
                }
                let name = required();
                if name.len() >= MAX_NAME {
                    return Err(param(format!(
                        "Invalid match name \"{name}\" ({} chars max)",
                        MAX_NAME - 1
                    )));
                }
                match Module::by_name(name) {
                    Some(module) => self.add_match(module),
                    None if EXTENSION_MATCHES.contains(&name) => {
                        return Err(unsupported(format_args!("match `{name}'")));
                    }
                    None => {
                        return Err(param(format!(
                            "Couldn't load match `{name}':No such file or directory\n"
                        )));
                    }
                }
            }
            'n' => self.set_option(opt::NUMERIC)?,
            'x' => self.set_option(opt::EXPANDED)?,
            't' => {
                if self.invert {
                    return Err(param("unexpected ! flag before --table"));
                }
                self.table = required().to_string();
            }
            'w' => {
                let text = optarg.or_else(|| self.getopt.take_optional());
                self.wait = match text {
                    // sscanf("%i"): trailing text is ignored.
                    Some(text) => match value::c_number(text) {
                        Some(n) => n.value() as i64 as i32 as i64,
                        None => return Err(param("wait seconds not numeric")),
                    },
                    None => -1,
                };
            }
            'W' => {
                let text = optarg
                    .or_else(|| self.getopt.take_optional())
                    .ok_or_else(|| param("wait interval value required"))?;
                // sscanf("%u")
                let usec = value::decimal_number(text)
                    .ok_or_else(|| param("wait interval not numeric"))?
                    .value() as u32;
                if usec > 999_999 {
                    return Err(param(format!("too long usec wait {usec} > 999999 usec")));
                }
                self.warnings
                    .push("Ignoring deprecated --wait-interval option.\n".into());
                self.wait_interval = true;
            }
            'M' | '4' => {}
            'c' => {
                self.set_option(opt::COUNTERS)?;
                let packets = required();
                // `-c PKTS,BYTES` or `-c PKTS BYTES`; the comma is looked for from the second
                // character on.
                let bytes = match packets.get(1..).and_then(|p| p.find(',')) {
                    Some(comma) => Some(&packets[comma + 2..]),
                    None => self.getopt.take_optional(),
                }
                .ok_or_else(|| param("-c requires packet and byte counter"))?;
                // sscanf("%llu")
                let count = |text, what| {
                    value::decimal_number(text)
                        .map(|n| n.value())
                        .ok_or_else(|| param(format!("-c {what} counter not numeric")))
                };
                self.counters = Some(Counter {
                    packets: count(packets, "packet")?,
                    bytes: count(bytes, "byte")?,
                });
            }
            // iptables-legacy is IPv4 only: `-6` is its "Try `iptables -h'" alone.
            '6' => return Err(Error::try_help("")),
            // In the optstring but handled by nobody: command_default's last resort.
            'b' => return Err(param("Unknown arg \"(null)\"")),
            _ => unreachable!("short_option and LONG_OPTIONS only return handled letters"),
        }
        Ok(())
    }

    /// `-i`/`-o`: iptables checks the value for emptiness, then the option, then parses the
    /// interface from the whole element.
    fn via(&mut self, option: u32, optarg: &str, element: &str) -> Result<Iface> {
        if optarg.is_empty() {
            return Err(param("Empty interface is likely to be undesired"));
        }
        self.set_option(option)?;
        Ok(Negatable {
            value: self.interface(element)?,
            negated: self.invert,
        })
    }

    /// `xtables_parse_interface`
    fn interface(&mut self, text: &str) -> Result<Interface> {
        if text.len() + 1 > IFNAMSIZ {
            return Err(param(format!(
                "interface name `{text}' must be shorter than IFNAMSIZ ({})",
                IFNAMSIZ - 1
            )));
        }
        if text.contains(char::is_whitespace) {
            // -S could not print it back as one word.
            return Err(unsupported(format_args!(
                "interface name `{text}' with white space"
            )));
        }
        if let Some(prefix) = text.strip_suffix('+') {
            return Ok(Interface {
                name: prefix.to_string(),
                wildcard: true,
            });
        }
        if text.contains('/') {
            self.warnings.push(format!(
                "Warning: weird character in interface `{text}' ('/' and ' ' are not allowed by the kernel).\n"
            ));
        }
        Ok(Interface {
            name: text.to_string(),
            wildcard: false,
        })
    }

    /// `--sport`/`--dport` of the current instance of `module`.
    fn port_option(&mut self, module: Module, dir: Dir, text: &str) -> Result<()> {
        let negated = self.invert;
        let db = self.db;
        let current = self
            .matches
            .iter_mut()
            .rev()
            .find(|m| m.module == module)
            .expect("a module's options exist only once it is loaded");
        let (seen, slot) = match dir {
            Dir::Source => (&mut current.sport_seen, &mut current.sport),
            Dir::Destination => (&mut current.dport_seen, &mut current.dport),
        };
        let long_name = match dir {
            Dir::Source => "source-port",
            Dir::Destination => "destination-port",
        };
        let tcp = module == Module::Tcp;
        if *seen {
            return Err(match tcp {
                true => param(format!("Only one `--{long_name}' allowed")),
                false => param(format!(
                    "udp: option \"--{long_name}\" can only be used once.\n"
                )),
            });
        }
        let range = match tcp {
            true => tcp_ports(db, text)?,
            false => udp_ports(db, text, long_name)?,
        };
        *seen = true;
        *slot = Some(Negatable {
            value: range,
            negated,
        });
        Ok(())
    }

    /// `--ctstate` / `--state` of the current instance of `module` (libxt_conntrack's
    /// `conntrack_mt_parse` and `state_ct23_parse`, after `xtables_option_parse`).
    fn states_option(&mut self, module: Module, text: &str) -> Result<()> {
        let negated = self.invert;
        let current = self
            .matches
            .iter_mut()
            .rev()
            .find(|m| m.module == module)
            .expect("a module's options exist only once it is loaded");
        let (name, option) = match module {
            Module::Conntrack => ("conntrack", "ctstate"),
            _ => ("state", "state"),
        };
        if current.states.is_some() {
            return Err(param(format!(
                "{name}: option \"--{option}\" can only be used once.\n"
            )));
        }
        let states = parse_states(module, text)?;
        if let Some(nat) = [(NAT_SNAT, "SNAT"), (NAT_DNAT, "DNAT")]
            .iter()
            .find(|(bit, _)| states & bit != 0)
            .map(|(_, nat)| nat)
        {
            return Err(unsupported(format_args!("ctstate `{nat}'")));
        }
        current.states = Some(Negatable {
            value: states as u8,
            negated,
        });
        Ok(())
    }

    /// tcp's `--syn` (`mask` None) and `--tcp-flags MASK COMP`, which takes COMP from the next
    /// argument.
    fn tcp_flags_option(&mut self, mask: Option<&str>) -> Result<()> {
        let negated = self.invert;
        let index = self
            .matches
            .iter()
            .rposition(|m| m.module == Module::Tcp)
            .expect("tcp's options exist only once it is loaded");
        if self.matches[index].tcp_flags.is_some() {
            return Err(param("Only one of `--syn' or `--tcp-flags'  allowed"));
        }
        let (mask, comp) = match mask {
            None => ("SYN,RST,ACK,FIN", "SYN"),
            Some(mask) => (
                mask,
                self.getopt
                    .take_optional()
                    .ok_or_else(|| param("--tcp-flags requires two args."))?,
            ),
        };
        self.matches[index].tcp_flags = Some(Negatable {
            value: TcpFlags {
                mask: tcp_flags(mask)?,
                comp: tcp_flags(comp)?,
            },
            negated,
        });
        Ok(())
    }

    /// An option of an extension: of the newest instance of a match, or of the target.
    fn ext_option(&mut self, ext: Ext, id: u8, arg: Option<&str>) -> Result<()> {
        let instance = match Ext::target_by_name(ext.name()) {
            Some(_) => self.target_ext.as_mut(),
            None => self
                .matches
                .iter_mut()
                .rev()
                .find(|m| m.module == Module::Ext(ext))
                .and_then(|m| m.ext.as_mut()),
        }
        .expect("an extension's options exist only once it is loaded");
        let mut cx = extensions::Context {
            db: self.db,
            proto: self.proto.as_ref(),
            warnings: &mut self.warnings,
        };
        instance.parse(id, arg, self.invert, &mut cx)
    }

    /// The matches' final checks (`xtables_option_mfcheck`), in `-m` order, then the target's.
    fn check_matches(&self) -> Result<()> {
        for m in &self.matches {
            if let Some(instance) = &m.ext {
                instance.finish()?;
            }
            match m.module {
                Module::Conntrack if m.states.is_none() => {
                    return Err(param("conntrack: At least one option is required"));
                }
                Module::State if m.states.is_none() => {
                    return Err(param("state: option \"--state\" must be specified\n"));
                }
                _ => {}
            }
        }
        if let Some(t) = &self.target_ext {
            t.finish()?;
        }
        Ok(())
    }

    /// The checks after the last option, then the command.
    fn finish(&mut self) -> Result<Invocation> {
        if self.wait == 0 && self.wait_interval {
            return Err(param("--wait-interval only makes sense with --wait\n"));
        }
        self.check_matches()?;
        if self.getopt.has_rest() {
            return Err(param("unknown arguments found on commandline"));
        }
        if self.command == 0 {
            return Err(param("no command specified"));
        }
        if self.invert {
            return Err(param("nothing appropriate following !"));
        }
        let rule_command = self.command & cmd::RULE != 0;
        let default = |given: Option<(&'a str, bool)>| match given {
            None if rule_command => Some(("0.0.0.0/0", false)),
            given => given,
        };
        let srcs = default(self.src)
            .map(|(text, _)| addresses(self.db, text))
            .transpose()?;
        let dsts = default(self.dst)
            .map(|(text, _)| addresses(self.db, text))
            .transpose()?;
        let count = |list: &Option<Vec<_>>| list.as_ref().map_or(0, Vec::len);
        let inverted = self.src.is_some_and(|(_, inv)| inv) || self.dst.is_some_and(|(_, inv)| inv);
        if (count(&srcs) > 1 || count(&dsts) > 1) && inverted {
            return Err(param(
                "! not allowed with multiple source or destination IP addresses",
            ));
        }
        if self.command == cmd::REPLACE && (count(&srcs) != 1 || count(&dsts) != 1) {
            return Err(param("Replacement rule does not specify a unique address"));
        }
        self.check_options()?;
        if let Some(chain) = self.chain.as_deref().filter(|c| c.len() >= MAX_NAME) {
            return Err(param(format!(
                "chain name `{chain}' too long (must be under {MAX_NAME} chars)"
            )));
        }
        if rule_command || self.command == cmd::DELETE_NUM {
            let chain = self.chain.as_deref().unwrap_or_default();
            if matches!(chain, "PREROUTING" | "INPUT") && self.options & opt::VIANAMEOUT != 0 {
                return Err(param(format!("Can't use -o with {chain}\n")));
            }
            if matches!(chain, "POSTROUTING" | "OUTPUT") && self.options & opt::VIANAMEIN != 0 {
                return Err(param(format!("Can't use -i with {chain}\n")));
            }
        }
        if self.verbose > 1 {
            return Err(unsupported(
                "option `-v -v' (libiptc's dump of the kernel table)",
            ));
        }
        let wait = match self.wait {
            0 => Wait::NoWait,
            // -1 is "forever"; other negative values make alarm(2) wait ~136 years.
            n if n < 0 => Wait::Forever,
            n => Wait::Seconds(n as u64),
        };
        let command = self.build(srcs.unwrap_or_default(), dsts.unwrap_or_default())?;
        Ok(Invocation {
            command,
            wait,
            table: self.table.clone(),
            verbose: self.verbose > 0,
            counters: self.counters,
        })
    }

    /// `generic_opt_check`
    fn check_options(&self) -> Result<()> {
        for (i, letter) in opt::LETTERS.iter().enumerate() {
            if self.options & (1 << i) == 0 {
                continue;
            }
            let mut legal = 0i8;
            for (_, row) in LEGAL.iter().filter(|(c, _)| self.command & c != 0) {
                if row.as_bytes().get(i) != Some(&b'x') {
                    legal = 1;
                } else if legal == 0 {
                    legal = -1;
                }
            }
            if legal == -1 {
                return Err(param(format!(
                    "Illegal option `-{letter}' with this command"
                )));
            }
        }
        Ok(())
    }

    /// The Command, from what the options gave.
    fn build(&mut self, srcs: Vec<Ipv4Network>, dsts: Vec<Ipv4Network>) -> Result<Command> {
        let chain = self.chain.clone();
        let rulenum = (self.rulenum > 0).then_some(self.rulenum);
        let named = || chain.clone().expect("the command takes a chain");
        let zero = match self.command & (cmd::ZERO | cmd::ZERO_NUM) {
            0 => None,
            cmd::ZERO => Some(Zeroing::Chains),
            _ => Some(Zeroing::Rule),
        };
        Ok(match self.command & !(cmd::ZERO | cmd::ZERO_NUM) {
            0 => Command::Zero { chain, rulenum },
            cmd::LIST => Command::List {
                chain,
                rulenum,
                options: ListOptions {
                    numeric: self.options & opt::NUMERIC != 0,
                    verbose: self.verbose > 0,
                    exact: self.options & opt::EXPANDED != 0,
                    line_numbers: self.options & opt::LINENUMBERS != 0,
                },
                zero,
            },
            cmd::LIST_RULES => Command::ListRules {
                chain,
                rulenum,
                verbose: self.verbose > 0,
                zero,
            },
            cmd::FLUSH => Command::Flush { chain },
            cmd::NEW_CHAIN => Command::NewChain { chain: named() },
            cmd::DELETE_CHAIN => Command::DeleteChain { chain },
            cmd::RENAME_CHAIN => {
                let new_name = self.new_name.expect("-E takes a new name").to_string();
                storable_chain_name(&new_name)?;
                Command::RenameChain {
                    chain: named(),
                    new_name,
                }
            }
            cmd::DELETE_NUM => Command::DeleteNum {
                chain: named(),
                index: self.rulenum,
            },
            cmd::SET_POLICY => {
                let chain = named();
                // libiptc's checks, made here since both are static for the filter table.
                if !BASE_CHAINS.contains(&chain.as_str()) {
                    return Err(Error::plain(OTHER_PROBLEM, "Bad built-in chain name"));
                }
                let policy = match self.policy.as_deref() {
                    Some("ACCEPT") => Policy::Accept,
                    Some("DROP") => Policy::Drop,
                    _ => {
                        return Err(Error::plain(
                            OTHER_PROBLEM,
                            "Bad policy name. Run `dmesg' for more information",
                        ));
                    }
                };
                Command::Policy { chain, policy }
            }
            rule_command => {
                let mut rules = self.rules(&srcs, &dsts)?;
                let chain = named();
                match rule_command {
                    cmd::APPEND => Command::Append { chain, rules },
                    cmd::INSERT => Command::Insert {
                        chain,
                        index: self.rulenum,
                        rules,
                    },
                    cmd::DELETE => Command::Delete { chain, rules },
                    cmd::CHECK => Command::Check { chain, rules },
                    cmd::REPLACE => Command::Replace {
                        chain,
                        index: self.rulenum,
                        rule: rules.remove(0),
                    },
                    other => unreachable!("add_command admits no command set {other:#x}"),
                }
            }
        })
    }

    /// The rules of the specification, one per source × destination, canonical.
    fn rules(&mut self, srcs: &[Ipv4Network], dsts: &[Ipv4Network]) -> Result<Vec<Rule>> {
        // `-i +` stays (libiptc compares it equal to no -i, but -L shows it); `! -i +` matches
        // nothing, which the data plane cannot say.
        let some_interface = |iface: Option<Iface>, letter| match iface {
            Some(Negatable {
                value,
                negated: true,
            }) if value.is_any() => {
                Err(unsupported(format_args!("`! -{letter} +' (no interface)")))
            }
            iface => Ok(iface),
        };
        let in_iface = some_interface(self.in_iface.take(), 'i')?;
        let out_iface = some_interface(self.out_iface.take(), 'o')?;
        let mut matches = Vec::new();
        for m in &self.matches {
            if let Some(instance) = &m.ext {
                if let extensions::Value::Match(value) = instance.finish()? {
                    matches.push(value);
                }
                continue;
            }
            let Some(proto) = m.module.proto() else {
                matches.push(Match::Conntrack {
                    module: match m.module {
                        Module::State => StateModule::State,
                        _ => StateModule::Conntrack,
                    },
                    states: m.states.clone().expect("check_matches saw to it"),
                });
                continue;
            };
            let canonical = |ports: Option<Negatable<PortRange>>, name| match ports {
                Some(Negatable {
                    value:
                        PortRange {
                            first: 0,
                            last: u16::MAX,
                        },
                    negated,
                }) => {
                    if negated {
                        Err(unsupported(format_args!("`! --{name} 0:65535' (no port)")))
                    } else {
                        Ok(None)
                    }
                }
                ports => Ok(ports),
            };
            matches.push(Match::Ports {
                proto,
                sport: canonical(m.sport.clone(), "sport")?,
                dport: canonical(m.dport.clone(), "dport")?,
                tcp_flags: m.tcp_flags.clone(),
            });
        }
        let proto = self.proto.clone().filter(|p| p.value != 0);
        let target = match &self.target_ext {
            Some(t) => match t.finish()? {
                extensions::Value::Target(target) => Some(target),
                extensions::Value::Match(_) => unreachable!("-j loads targets"),
            },
            None => self.target.clone(),
        };
        let address = |net: &Ipv4Network, inverted: Option<(&str, bool)>| {
            let negated = inverted.is_some_and(|(_, inv)| inv);
            (negated || net.prefix() != 0).then_some(Negatable {
                value: *net,
                negated,
            })
        };
        let mut rules = Vec::new();
        for src in srcs {
            for dst in dsts {
                rules.push(Rule {
                    src: address(src, self.src),
                    dst: address(dst, self.dst),
                    in_iface: in_iface.clone(),
                    out_iface: out_iface.clone(),
                    proto: proto.clone(),
                    fragment: self.fragment.clone(),
                    matches: matches.clone(),
                    target: target.clone(),
                    counter: 0,
                });
            }
        }
        Ok(rules)
    }
}

/// `iptc_init`'s answer for the table of `-t`: pcn-iptables has the filter table only.
pub(super) fn check_table(table: &str) -> Result<()> {
    if table == "filter" {
        return Ok(());
    }
    Err(if OTHER_TABLES.contains(&table) {
        unsupported(format_args!("table `{table}'"))
    } else {
        Error::versioned(
            VERSION_PROBLEM,
            format!(
                "can't initialize iptables table `{table}': Table does not exist (do you need to insmod?)\n\
                 Perhaps iptables or your kernel needs to be upgraded."
            ),
        )
    })
}

/// `assert_valid_chain_name`, for `-N`.
fn valid_chain_name(name: &str) -> Result<()> {
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
fn storable_chain_name(name: &str) -> Result<()> {
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
fn target_name(name: &str) -> Result<&str> {
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
fn jump_target(name: &str) -> Result<Target> {
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
/// masked.
fn addresses(db: &NameDb, text: &str) -> Result<Vec<Ipv4Network>> {
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
        let net = |addr: Ipv4Addr| {
            Ipv4Network::with_netmask(addr & mask, mask)
                .map_err(|_| unsupported(format_args!("non-contiguous mask `{mask}'")))
        };
        for addr in found {
            nets.push(net(addr)?);
        }
    }
    Ok(nets)
}

/// The tcp match's `parse_tcp_ports`: `port`, `first:last`, `:last`, `first:`.
fn tcp_ports(db: &NameDb, text: &str) -> Result<PortRange> {
    let port = |s: &str| {
        value::tcp_port(db, s).ok_or_else(|| param(format!("invalid port/service `{s}' specified")))
    };
    let Some((first, last)) = text.split_once(':') else {
        let p = port(text)?;
        return Ok(PortRange { first: p, last: p });
    };
    let first = if first.is_empty() { 0 } else { port(first)? };
    let last = if last.is_empty() {
        u16::MAX
    } else {
        port(last)?
    };
    if first > last {
        return Err(param("invalid portrange (min > max)"));
    }
    Ok(PortRange { first, last })
}

/// libxt_tcp's `parse_tcp_flag`: comma-separated names (any case), `ALL` and `NONE` included;
/// strtok(3) splits them, so empty names are skipped (`""` is no flag, `SYN,,ACK` two).
fn tcp_flags(text: &str) -> Result<u8> {
    const NAMES: [(&str, u8); 8] = [
        ("FIN", 0x01),
        ("SYN", 0x02),
        ("RST", 0x04),
        ("PSH", 0x08),
        ("ACK", 0x10),
        ("URG", 0x20),
        ("ALL", 0x3F),
        ("NONE", 0),
    ];
    text.split(',')
        .filter(|n| !n.is_empty())
        .try_fold(0, |flags, name| {
            NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, bit)| flags | bit)
                .ok_or_else(|| param(format!("Unknown TCP flag `{name}'")))
        })
}

/// libxt_conntrack's bits for SNAT and DNAT in a parsed state list, beyond the model's
/// `1 << ctstate::*` ones.
const NAT_SNAT: u32 = 1 << 8;
const NAT_DNAT: u32 = 1 << 9;

/// The state names `--ctstate` takes, in the order libxt_conntrack tries them, and their bits.
/// `--state` takes the first five.
const STATE_NAMES: [(&str, u32); 7] = [
    ("INVALID", 1 << ctstate::INVALID),
    ("NEW", 1 << ctstate::NEW),
    ("ESTABLISHED", 1 << ctstate::ESTABLISHED),
    ("RELATED", 1 << ctstate::RELATED),
    ("UNTRACKED", 1 << ctstate::UNTRACKED),
    ("SNAT", NAT_SNAT),
    ("DNAT", NAT_DNAT),
];

/// A comma-separated state list: `conntrack_ps_states` (`--ctstate`) or `state_parse_states`
/// (`--state`). A state is named by any prefix of its name, in any case (`strncasecmp` with
/// the length given); the error quotes the rest of the list from the bad state on.
fn parse_states(module: Module, text: &str) -> Result<u32> {
    let (names, bad) = match module {
        Module::Conntrack => (&STATE_NAMES[..], "ctstate"),
        _ => (&STATE_NAMES[..5], "state"),
    };
    let state = |part: &str| {
        names
            .iter()
            .find(|(name, _)| {
                !part.is_empty()
                    && part.len() <= name.len()
                    && name.as_bytes()[..part.len()].eq_ignore_ascii_case(part.as_bytes())
            })
            .map(|&(_, bit)| bit)
    };
    let bad_state = |rest: &str| param(format!("Bad {bad} \"{rest}\""));
    let mut mask = 0;
    let mut rest = text;
    while let Some(comma) = rest.find(',') {
        mask |= state(&rest[..comma]).ok_or_else(|| bad_state(rest))?;
        rest = &rest[comma + 1..];
    }
    if rest.is_empty() && module == Module::State {
        return Err(param(
            "\"--state\" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED",
        ));
    }
    Ok(mask | state(rest).ok_or_else(|| bad_state(rest))?)
}

/// The udp match's port ranges (libxtables' `xtopt_parse_mport`). 1.8.9 accepts a reversed range
/// (`5:3`, which matches nothing); an empty text is port 0.
fn udp_ports(db: &NameDb, text: &str, long_name: &str) -> Result<PortRange> {
    let mut range = [0, u16::MAX];
    let mut count = 0;
    for part in text.split(':') {
        if count == range.len() {
            return Err(param(format!(
                "udp: Too many components for option \"--{long_name}\" (max: 2)\n"
            )));
        }
        if !part.is_empty() {
            range[count] = value::service_port(db, part)
                .ok_or_else(|| param(format!("Port \"{part}\" does not resolve to anything.\n")))?;
        }
        count += 1;
    }
    if count == 1 {
        range[1] = range[0];
    }
    Ok(PortRange {
        first: range[0],
        last: range[1],
    })
}
