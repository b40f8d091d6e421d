//! libxt_conntrack: `-m conntrack --ctstate` and its alias `-m state --state` (the other
//! conntrack options are known to getopt but refused). The options reach the command line's
//! parser (`syntax/matches.rs`), which calls [`parse_states`].

use std::fmt::Write as _;

use pcn_iptables_common::conntrack::ctstate;

use super::api::{Extension, Field, Show, Want, bang};
use crate::error::Result;
use crate::model::{Match, StateModule};
use crate::xtables::param;

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
