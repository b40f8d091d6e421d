//! libxt_conntrack: `-m conntrack --ctstate` and its alias `-m state --state` (the other
//! conntrack options are known to getopt but refused).

use std::fmt::Write as _;

use pcn_iptables_common::conntrack::ctstate;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, mandatory};
use crate::error::Result;
use crate::model::{Match, Negatable, StateModule};
use crate::xtables::{param, unsupported};

/// `--ctstate`, then the options of [`OTHER_OPTIONS`] (ids 1 to 12), refused when parsed.
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
    entry(OTHER_OPTIONS[11], 12, true, 0),
];

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

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        match id {
            0 => parse(v, StateModule::Conntrack, arg, invert),
            _ => Err(unsupported(format_args!(
                "option \"--{}\"",
                OTHER_OPTIONS[id as usize - 1]
            ))),
        }
    }

    fn check(&self, xflags: u32, _: &Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("conntrack: At least one option is required"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        save(m, out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        print(m, out);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        want(m, field)
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

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        print(m, out);
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
    let states = parse_states(module, text)?;
    if let Some(nat) = [(NAT_SNAT, "SNAT"), (NAT_DNAT, "DNAT")]
        .iter()
        .find(|(bit, _)| states & bit != 0)
        .map(|(_, nat)| nat)
    {
        return Err(unsupported(format_args!("ctstate `{nat}'")));
    }
    *v.as_match() = Match::Conntrack {
        module,
        states: Negatable {
            value: states as u8,
            negated: invert,
        },
    };
    Ok(())
}

fn save(m: &Match, out: &mut String) {
    let Match::Conntrack { module, states } = m else {
        return;
    };
    let (_, option) = state_match_names(*module);
    let _ = write!(
        out,
        "{} --{option} {}",
        bang(states.negated),
        state_names(states.value)
    );
}

fn print(m: &Match, out: &mut String) {
    let Match::Conntrack { module, states } = m else {
        return;
    };
    // conntrack_dump: " !" before the option's name.
    let (_, option) = state_match_names(*module);
    let _ = write!(
        out,
        "{} {option} {}",
        bang(states.negated),
        state_names(states.value)
    );
}

/// The connection states, as a set of `ctstate` values.
fn want(m: &Match, field: Field) -> Option<Want> {
    let (Match::Conntrack { states, .. }, Field::CtState) = (m, field) else {
        return None;
    };
    let values = (0..8u32).filter(|bit| states.value & (1 << bit) != 0);
    Some(Want::ranges(values.map(|v| (v, v)), states.negated))
}

/// A state match's module and option as `-S` and `-L` name them.
pub fn state_match_names(module: StateModule) -> (&'static str, &'static str) {
    match module {
        StateModule::Conntrack => ("conntrack", "ctstate"),
        StateModule::State => ("state", "state"),
    }
}

/// A set of conntrack states as libxt_conntrack's `print_state` lists them: INVALID, NEW,
/// RELATED, ESTABLISHED, UNTRACKED, comma-separated.
pub fn state_names(states: u8) -> String {
    [
        (ctstate::INVALID, "INVALID"),
        (ctstate::NEW, "NEW"),
        (ctstate::RELATED, "RELATED"),
        (ctstate::ESTABLISHED, "ESTABLISHED"),
        (ctstate::UNTRACKED, "UNTRACKED"),
    ]
    .iter()
    .filter(|(state, _)| states & (1 << state) != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// libxt_conntrack's options other than `--ctstate` (revision 3, in its order), which
/// pcn-iptables does not implement. They are known to getopt all the same, so that
/// abbreviations are as ambiguous as in iptables.
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

/// libxt_conntrack's bits for SNAT and DNAT in a parsed state list, beyond the model's
/// `1 << ctstate::*` ones.
pub const NAT_SNAT: u32 = 1 << 8;
pub const NAT_DNAT: u32 = 1 << 9;

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
pub fn parse_states(module: StateModule, text: &str) -> Result<u32> {
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
