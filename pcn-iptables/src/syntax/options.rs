//! iptables 1.8.9's option tables: the commands and options of `do_parse`, the long options
//! getopt knows, the match modules and the names of the extensions pcn-iptables lacks.

use super::getopt::{HasArg, LongOpt};
use crate::ext::Ext;

pub(super) mod cmd {
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
pub(super) mod opt {
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
pub(super) const LEGAL: [(u32, &str); 15] = [
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

/// The match `-p NAME` loads on demand (tcp, udp, icmp, esp, ah, sctp, dccp), by the
/// protocol's name.
pub(super) fn by_protocol(name: &str) -> Option<Ext> {
    match name {
        "tcp" | "udp" | "icmp" | "esp" | "ah" | "sctp" | "dccp" => Ext::match_by_name(name),
        _ => None,
    }
}

/// An extension's options for getopt.
pub(super) fn ext_options(ext: Ext) -> Vec<LongOpt<Opt>> {
    ext.entries()
        .iter()
        .map(|e| LongOpt {
            name: e.name,
            has_arg: e.has_arg,
            val: Opt::Ext(ext, e.id),
        })
        .collect()
}

/// An option as getopt returns it: iptables' own, or one of a loaded extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opt {
    /// A letter of iptables' optstring (long options map to their letter).
    Letter(char),
    /// `--line-numbers` (iptables' `'0'`).
    LineNumbers,
    /// An option of an extension, by its id.
    Ext(Ext, u8),
}

/// iptables 1.8.9's optstring `-:A:C:D:E:F::I:L::M:N:P:VX::Z::c:h::m:nvw::xR:S::W::46bd:fg:i:j:o:p:s:t:`.
pub(super) fn short_option(c: char) -> Option<(Opt, HasArg)> {
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
pub(super) const LONG_OPTIONS: [(&str, HasArg, char); 37] = [
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
pub(super) const EXTENSION_TARGETS: [&str; 36] = [
    "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT",
    "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE", "NETMAP", "NFLOG",
    "NFQUEUE", "NOTRACK", "QUEUE", "RATEEST", "REDIRECT", "REJECT", "SECMARK", "SET", "SNAT",
    "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
];

/// Match extensions of iptables 1.8.9 for IPv4 that pcn-iptables lacks.
#[rustfmt::skip]
pub(super) const EXTENSION_MATCHES: [&str; 37] = [
    "ah", "bpf", "cgroup", "cluster", "connbytes", "connlabel", "connlimit", "connmark", "cpu",
    "devgroup", "dscp", "ecn", "esp", "hashlimit", "helper", "ipcomp", "ipvs", "mark",
    "nfacct", "osf", "owner", "physdev", "pkttype", "policy", "quota", "rateest", "realm",
    "recent", "rpfilter", "set", "socket", "statistic", "string", "tcpmss", "time",
    "tos", "u32",
];

/// Long options of the protocol matches `-p` loads on demand that pcn-iptables lacks.
#[rustfmt::skip]
pub(super) const PROTOCOL_MATCH_OPTIONS: [(&str, &[&str]); 1] = [
    ("ipcomp", &["ipcompspi", "compres"]),
];

/// Whether `xtables_find_target` finds a target by this name: the standard target (under
/// `""`, `standard` and the verdicts it stands for) or a target extension.
pub(super) fn is_target(name: &str) -> bool {
    matches!(
        name,
        "" | "standard" | "ACCEPT" | "DROP" | "QUEUE" | "RETURN"
    ) || EXTENSION_TARGETS.contains(&name)
}

/// xtables' `XT_EXTENSION_MAXNAMELEN`: names are shorter than this.
pub(super) const MAX_NAME: usize = 29;
/// The kernel's `IFNAMSIZ`, terminating NUL included.
pub(super) const IFNAMSIZ: usize = 16;
