//! libxt_TCPMSS: `--set-mss value` or `--clamp-mss-to-pmtu` (the later one given wins), for
//! TCP SYN rules only (the kernel's checks: `ruleset::apply`).

use std::fmt::Write as _;

use pcn_iptables_common::{Action, rewrite::CLAMP_PMTU, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry, flag};
use crate::error::Result;
use crate::model::{IPPROTO_TCP, Match, Rule, Target};
use crate::xtables::{param, uint_option};

pub struct TcpmssTarget;

pub const ENTRIES: [Entry; 2] = [entry("set-mss", 0, false, 0), flag("clamp-mss-to-pmtu", 1)];

/// `--set-mss` at most: the largest MSS an IPv4 packet can carry.
const MAX_MSS: u64 = 65535 - 20;

impl Extension for TcpmssTarget {
    fn name(&self) -> &'static str {
        "TCPMSS"
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Target(Target::Tcpmss(0))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, _: &mut Context) -> Result<()> {
        let mss = match id {
            0 => uint_option("TCPMSS", "set-mss", arg, MAX_MSS)? as u16,
            _ => CLAMP_PMTU,
        };
        *v.as_target() = Target::Tcpmss(mss);
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("TCPMSS target: At least one parameter is required"));
        }
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let _ = match t {
            Target::Tcpmss(CLAMP_PMTU) => write!(out, " --clamp-mss-to-pmtu"),
            Target::Tcpmss(mss) => write!(out, " --set-mss {mss}"),
            _ => Ok(()),
        };
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let _ = match t {
            Target::Tcpmss(CLAMP_PMTU) => write!(out, " TCPMSS clamp to PMTU"),
            Target::Tcpmss(mss) => write!(out, " TCPMSS set {mss}"),
            _ => Ok(()),
        };
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Tcpmss(mss) = t else {
            unreachable!("TCPMSS's target")
        };
        action.set_mark = *mss as u32;
        verdict::TCPMSS
    }
}

/// xt_TCPMSS's `tcpmss_tg4_check`: the rule has a tcp match whose flags compare SYN set, not
/// negated (`find_syn_match`).
pub fn matches_syn(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| match m {
        Match::Ports {
            proto,
            tcp_flags: Some(f),
            ..
        } => *proto == IPPROTO_TCP && !f.negated && f.value.comp & 0x02 != 0,
        _ => false,
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "TCPMSS target mutually-exclusive options:\n",
    "  --set-mss value               explicitly set MSS option to specified value\n",
    "  --clamp-mss-to-pmtu           automatically clamp MSS value to (path_MTU - 20)\n",
);
