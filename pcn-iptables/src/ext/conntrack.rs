//! libxt_conntrack: `-m conntrack --ctstate` (SNAT and DNAT too), `--ctproto`,
//! `--ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst`, their ports, `--ctstatus`,
//! `--ctexpire` and `--ctdir`, and the alias `-m state --state`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use pcn_iptables_common::conntrack::{ctstate, ips};

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, mandatory};
use crate::error::Result;
use crate::model::{CtAddr, CtOther, Match, Negatable, StateModule};
use crate::xtables::{hostmask, mint_range, param, value::protocol};

/// `--ctstate`, then the options of [`OTHER_OPTIONS`] (ids 1 to 12): `--ctproto` (1), the
/// tuple addresses (2 to 5), `--ctstatus` (6), `--ctexpire` (7), the tuple ports (8 to 11)
/// and `--ctdir` (12).
pub const CONNTRACK_ENTRIES: [Entry; 13] = [
    entry("ctstate", 0, true, 0),
    entry(OTHER_OPTIONS[0], 1, true, 0),
    entry(OTHER_OPTIONS[1], 2, true, 0),
    entry(OTHER_OPTIONS[2], 3, true, 0),
    entry(OTHER_OPTIONS[3], 4, true, 0),
    entry(OTHER_OPTIONS[4], 5, true, 0),
    entry(OTHER_OPTIONS[5], 6, true, 0),
    entry(OTHER_OPTIONS[6], 7, true, 0),
    entry(OTHER_OPTIONS[7], 8, true, 0),
    entry(OTHER_OPTIONS[8], 9, true, 0),
    entry(OTHER_OPTIONS[9], 10, true, 0),
    entry(OTHER_OPTIONS[10], 11, true, 0),
    entry(OTHER_OPTIONS[11], CTDIR, false, 0),
];

const CTPROTO: u8 = 1;
const CTSTATUS: u8 = 6;
const CTEXPIRE: u8 = 7;
const CTDIR: u8 = 12;

/// The ids of `--ctorigsrc` … `--ctrepldst`, in `Match::ConntrackTuple::addrs`' order.
const ADDR_IDS: std::ops::RangeInclusive<u8> = 2..=5;
/// The ids of `--ctorigsrcport` … `--ctrepldstport`, in `CtOther::ports`' order.
const PORT_IDS: std::ops::RangeInclusive<u8> = 8..=11;

pub const STATE_ENTRIES: [Entry; 1] = [mandatory("state", 0, true)];

pub struct Conntrack;
pub struct State;

/// The extension of a state match, by the module that spelled it.
pub fn of(module: StateModule) -> &'static dyn Extension {
    match module {
        StateModule::Conntrack => &Conntrack,
        StateModule::State => &State,
    }
}

impl Extension for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn help(&self) -> &'static str {
        CONNTRACK_HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &CONNTRACK_ENTRIES
    }

    fn init(&self) -> Value {
        init(StateModule::Conntrack)
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        match id {
            0 => parse(v, StateModule::Conntrack, arg, invert),
            _ if ADDR_IDS.contains(&id) => parse_addr(v, id, arg, invert, cx),
            _ if PORT_IDS.contains(&id) => parse_port(v, id, arg, invert, cx),
            _ => parse_other(v, id, arg, invert, cx),
        }
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("conntrack: At least one option is required"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        save(m, out);
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        print(m, show, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        want(m, field)
    }

    fn per_packet(&self, m: &Match) -> bool {
        // The tuples are not in the flow cache's key.
        matches!(m, Match::ConntrackTuple { .. })
    }

    fn tracks(&self) -> bool {
        true
    }
}

impl Extension for State {
    fn name(&self) -> &'static str {
        "state"
    }

    fn help(&self) -> &'static str {
        STATE_HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &STATE_ENTRIES
    }

    fn init(&self) -> Value {
        init(StateModule::State)
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v, StateModule::State, arg, invert)
    }

    fn save(&self, m: &Match, out: &mut String) {
        save(m, out);
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        print(m, show, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        want(m, field)
    }

    fn tracks(&self) -> bool {
        true
    }
}

fn init(module: StateModule) -> Value {
    Value::Match(Match::Conntrack {
        module,
        states: Negatable::plain(0),
    })
}

/// `--ctstate` / `--state` (libxt_conntrack's `conntrack_mt_parse` and `state_ct23_parse`).
fn parse(v: &mut Value, module: StateModule, text: &str, invert: bool) -> Result<()> {
    let parsed = Negatable {
        value: parse_states(module, text)?,
        negated: invert,
    };
    match v.as_match() {
        Match::ConntrackTuple { states, .. } => *states = parsed,
        m => {
            *m = Match::Conntrack {
                module,
                states: parsed,
            }
        }
    }
    Ok(())
}

/// The match as a `ConntrackTuple`, keeping the states given so far.
fn tuple(v: &mut Value) -> &mut Match {
    let m = v.as_match();
    if let Match::Conntrack { states, .. } = m {
        *m = Match::ConntrackTuple {
            states: states.clone(),
            addrs: [None, None, None, None],
            other: CtOther::default(),
        };
    }
    m
}

/// `--ctproto` (`xtables_parse_protocol`), `--ctstatus` (names, any case), `--ctexpire`
/// (XTTYPE_UINT32RC) and `--ctdir ORIGINAL|REPLY` (any case).
fn parse_other(v: &mut Value, id: u8, text: &str, invert: bool, cx: &mut Context) -> Result<()> {
    let Match::ConntrackTuple { other, .. } = tuple(v) else {
        unreachable!("a conntrack instance holds a conntrack match");
    };
    if id == CTSTATUS {
        other.status = Some(Negatable {
            value: parse_statuses(text)?,
            negated: invert,
        });
    } else if id == CTEXPIRE {
        let (lo, hi) = mint_range("conntrack", "ctexpire", text, u32::MAX as u64)?;
        other.expire = Some(Negatable {
            value: (lo as u32, hi as u32),
            negated: invert,
        });
    } else if id == CTPROTO {
        let proto = protocol(cx.db, text)
            .ok_or_else(|| param(format!("unknown protocol \"{text}\" specified")))?;
        other.proto = Some(Negatable {
            value: proto,
            negated: invert,
        });
    } else if text.eq_ignore_ascii_case("ORIGINAL") || text.eq_ignore_ascii_case("REPLY") {
        other.reply = Some(text.eq_ignore_ascii_case("REPLY"));
    } else {
        return Err(param(format!(
            "conntrack: Bad value for \"--ctdir\" option: \"{text}\""
        )));
    }
    Ok(())
}

/// `--ctorigsrc` … `--ctrepldst ADDR[/MASK]` (libxtables' XTTYPE_HOSTMASK).
fn parse_addr(v: &mut Value, id: u8, text: &str, invert: bool, cx: &mut Context) -> Result<()> {
    let option = OTHER_OPTIONS[id as usize - 1];
    let (addr, mask, prefix) = hostmask(cx.db, "conntrack", option, text)?;
    if let Match::ConntrackTuple { addrs, .. } = tuple(v) {
        addrs[(id - ADDR_IDS.start()) as usize] = Some(Negatable {
            value: CtAddr { addr, mask, prefix },
            negated: invert,
        });
    }
    Ok(())
}

/// `--ctorigsrcport` … `--ctrepldstport PORT[:PORT]` (libxtables' XTTYPE_PORTRC).
fn parse_port(v: &mut Value, id: u8, text: &str, invert: bool, cx: &mut Context) -> Result<()> {
    let option = OTHER_OPTIONS[id as usize - 1];
    let [low, high] = crate::xtables::port_range(cx.db, "conntrack", option, text)?;
    if let Match::ConntrackTuple { other, .. } = tuple(v) {
        other.ports[(id - PORT_IDS.start()) as usize] = Some(Negatable {
            value: (low, high),
            negated: invert,
        });
    }
    Ok(())
}

/// `--ctorigsrc` … `--ctrepldst`, each if given.
type TupleAddrs = [Option<Negatable<CtAddr>>];

/// The match's states (none: `value` 0), its module, its tuple addresses and the rest.
fn parts(m: &Match) -> Option<(Negatable<u8>, StateModule, &TupleAddrs, CtOther)> {
    match m {
        Match::Conntrack { module, states } => {
            Some((states.clone(), *module, &[], CtOther::default()))
        }
        Match::ConntrackTuple {
            states,
            addrs,
            other,
        } => Some((states.clone(), StateModule::Conntrack, addrs, other.clone())),
        _ => None,
    }
}

/// `conntrack_dump`: the options in libxt_conntrack's order whatever the order given
/// (`--ctstate`, `--ctproto`, the addresses, their ports, `--ctstatus`, `--ctexpire`,
/// `--ctdir`), each
/// with `!` before it; `prefix` is `--` for `-S`. A `-L` address is named unless numeric,
/// `anywhere` when 0.
fn dump(m: &Match, prefix: &str, show: Option<&Show>, out: &mut String) {
    let Some((states, module, addrs, other)) = parts(m) else {
        return;
    };
    let (_, option) = state_match_names(module);
    if states.value != 0 {
        let _ = write!(
            out,
            "{} {prefix}{option} {}",
            bang(states.negated),
            state_names(states.value)
        );
    }
    if let Some(p) = other.proto {
        let _ = write!(out, "{} {prefix}ctproto {}", bang(p.negated), p.value);
    }
    for (a, option) in addrs.iter().zip(&OTHER_OPTIONS[1..5]) {
        let Some(a) = a else { continue };
        let _ = write!(out, "{} {prefix}{option} ", bang(a.negated));
        let addr = Ipv4Addr::from(a.value.addr);
        match show.filter(|s| !s.numeric) {
            Some(_) if a.value.addr == 0 => {
                out.push_str("anywhere");
                continue;
            }
            Some(s) => match s
                .db
                .host_name(addr)
                .or_else(|| s.db.network_name(a.value.addr))
            {
                Some(name) => out.push_str(name),
                None => {
                    let _ = write!(out, "{addr}");
                }
            },
            None => {
                let _ = write!(out, "{addr}");
            }
        }
        // xtables_ipmask_to_numeric: nothing for /32 (parsed masks have no holes).
        if a.value.mask != u32::MAX {
            let _ = write!(out, "/{}", a.value.mask.leading_ones());
        }
    }
    for (p, option) in other.ports.iter().zip(&OTHER_OPTIONS[7..11]) {
        let Some(p) = p else { continue };
        let (lo, hi) = p.value;
        let _ = write!(out, "{} {prefix}{option} {lo}", bang(p.negated));
        // conntrack_dump_ports: a high port of 0 is not shown.
        if hi != 0 && hi != lo {
            let _ = write!(out, ":{hi}");
        }
    }
    if let Some(s) = other.status {
        let names: Vec<&str> = STATUS_NAMES[1..]
            .iter()
            .filter(|(_, bit)| s.value & bit != 0)
            .map(|(name, _)| *name)
            .collect();
        let names = if names.is_empty() {
            "NONE".to_string()
        } else {
            names.join(",")
        };
        let _ = write!(out, "{} {prefix}ctstatus {names}", bang(s.negated));
    }
    if let Some(e) = other.expire {
        let _ = write!(out, "{} {prefix}ctexpire {}", bang(e.negated), e.value.0);
        if e.value.1 != e.value.0 {
            let _ = write!(out, ":{}", e.value.1);
        }
    }
    if let Some(reply) = other.reply {
        let dir = if reply { "REPLY" } else { "ORIGINAL" };
        let _ = write!(out, " {prefix}ctdir {dir}");
    }
}

/// libxt_conntrack's `conntrack_ps_statuses`: comma-separated names, each any prefix of one
/// (strncasecmp, tried in `STATUS_NAMES`' order); the error shows the rest of the list from
/// the bad name on.
fn parse_statuses(text: &str) -> Result<u8> {
    let mut bits = 0;
    let mut rest = text;
    loop {
        let (word, next) = match rest.split_once(',') {
            Some((w, n)) => (w, Some(n)),
            None => (rest, None),
        };
        let found = STATUS_NAMES.iter().find(|(name, _)| {
            !word.is_empty()
                && word.len() <= name.len()
                && name[..word.len()].eq_ignore_ascii_case(word)
        });
        let Some((_, bit)) = found else {
            return Err(param(format!("Bad ctstatus \"{rest}\"")));
        };
        bits |= bit;
        match next {
            Some(n) => rest = n,
            None => return Ok(bits),
        }
    }
}

/// `--ctstatus` names, in libxt_conntrack's order, and their IPS_* bits.
const STATUS_NAMES: [(&str, u8); 5] = [
    ("NONE", 0),
    ("EXPECTED", ips::EXPECTED),
    ("SEEN_REPLY", ips::SEEN_REPLY),
    ("ASSURED", ips::ASSURED),
    ("CONFIRMED", ips::CONFIRMED),
];

fn save(m: &Match, out: &mut String) {
    dump(m, "--", None, out);
}

fn print(m: &Match, show: &Show, out: &mut String) {
    dump(m, "", Some(show), out);
}

/// The connection states, as a set of CTSTATE values: a state's value with or without the
/// nat bits, and for SNAT (DNAT) every value with `PACKET_SNAT` (`PACKET_DNAT`); the tuple
/// addresses, as the rule's own check (`Want::CtTuple`).
fn want(m: &Match, field: Field) -> Option<Want> {
    let (states, _, addrs, other) = parts(m)?;
    match field {
        Field::CtState if states.value != 0 => Some(Want::ranges(
            state_values(states.value).map(|v| (v, v)),
            states.negated,
        )),
        Field::CtTuple if !addrs.is_empty() => Some(Want::CtTuple {
            addrs: [0, 1, 2, 3].map(|i| addrs[i].clone()),
            states: states.value != 0,
            other,
        }),
        _ => None,
    }
}

/// The CTSTATE values (`ctstate::with_nat`) a set of model state bits holds.
pub fn state_values(states: u8) -> impl Iterator<Item = u32> {
    let bit = move |b: u8| states & (1 << b) != 0;
    let (snat, dnat) = (bit(ctstate::SNAT), bit(ctstate::DNAT));
    (0..32u32).filter(move |v| {
        let (state, nat) = ((v & 7) as u8, *v as u8);
        state <= ctstate::UNTRACKED
            && (bit(state)
                || (snat && nat & ctstate::PACKET_SNAT != 0)
                || (dnat && nat & ctstate::PACKET_DNAT != 0))
    })
}

/// A state match's module and option as `-S` and `-L` name them.
pub fn state_match_names(module: StateModule) -> (&'static str, &'static str) {
    match module {
        StateModule::Conntrack => ("conntrack", "ctstate"),
        StateModule::State => ("state", "state"),
    }
}

/// A set of conntrack states as libxt_conntrack's `print_state` lists them: INVALID, NEW,
/// RELATED, ESTABLISHED, UNTRACKED, SNAT, DNAT, comma-separated.
pub fn state_names(states: u8) -> String {
    [
        (ctstate::INVALID, "INVALID"),
        (ctstate::NEW, "NEW"),
        (ctstate::RELATED, "RELATED"),
        (ctstate::ESTABLISHED, "ESTABLISHED"),
        (ctstate::UNTRACKED, "UNTRACKED"),
        (ctstate::SNAT, "SNAT"),
        (ctstate::DNAT, "DNAT"),
    ]
    .iter()
    .filter(|(state, _)| states & (1 << state) != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// libxt_conntrack's options other than `--ctstate` (revision 3, in its order).
pub const OTHER_OPTIONS: [&str; 12] = [
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

/// The state names `--ctstate` takes, in the order libxt_conntrack tries them, and their bits.
/// `--state` takes the first five.
const STATE_NAMES: [(&str, u8); 7] = [
    ("INVALID", 1 << ctstate::INVALID),
    ("NEW", 1 << ctstate::NEW),
    ("ESTABLISHED", 1 << ctstate::ESTABLISHED),
    ("RELATED", 1 << ctstate::RELATED),
    ("UNTRACKED", 1 << ctstate::UNTRACKED),
    ("SNAT", 1 << ctstate::SNAT),
    ("DNAT", 1 << ctstate::DNAT),
];

/// A comma-separated state list: `conntrack_ps_states` (`--ctstate`) or `state_parse_states`
/// (`--state`). A state is named by any prefix of its name, in any case (`strncasecmp` with
/// the length given); the error quotes the rest of the list from the bad state on.
pub fn parse_states(module: StateModule, text: &str) -> Result<u8> {
    let (names, bad) = match module {
        StateModule::Conntrack => (&STATE_NAMES[..], "ctstate"),
        StateModule::State => (&STATE_NAMES[..5], "state"),
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
    if rest.is_empty() && module == StateModule::State {
        return Err(param(
            "\"--state\" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED",
        ));
    }
    Ok(mask | state(rest).ok_or_else(|| bad_state(rest))?)
}

/// libxt's help texts.
pub const CONNTRACK_HELP: &str = concat!(
    "\n",
    "conntrack match options:\n",
    "[!] --ctstate {INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED|SNAT|DNAT}[,...]\n",
    "                               State(s) to match\n",
    "[!] --ctproto proto            Protocol to match; by number or name, e.g. \"tcp\"\n",
    "[!] --ctorigsrc address[/mask]\n",
    "[!] --ctorigdst address[/mask]\n",
    "[!] --ctreplsrc address[/mask]\n",
    "[!] --ctrepldst address[/mask]\n",
    "                               Original/Reply source/destination address\n",
    "[!] --ctorigsrcport port\n",
    "[!] --ctorigdstport port\n",
    "[!] --ctreplsrcport port\n",
    "[!] --ctrepldstport port\n",
    "                               TCP/UDP/SCTP orig./reply source/destination port\n",
    "[!] --ctstatus {NONE|EXPECTED|SEEN_REPLY|ASSURED|CONFIRMED}[,...]\n",
    "                               Status(es) to match\n",
    "[!] --ctexpire time[:time]     Match remaining lifetime in seconds against\n",
    "                               value or range of values (inclusive)\n",
    "    --ctdir {ORIGINAL|REPLY}   Flow direction of packet\n",
);

pub const STATE_HELP: &str = concat!(
    "\n",
    "state match options:\n",
    " [!] --state [INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED][,...]\n",
    "\t\t\t\tState(s) to match\n",
);
