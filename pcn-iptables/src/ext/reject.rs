//! libipt_REJECT: `--reject-with` an ICMP error or `tcp-reset`.

use std::fmt::Write as _;

use pcn_iptables_common::{Action, reject, verdict};

use super::api::{Context, Entry, Extension, Kind, Value, entry};
use crate::error::Result;
use crate::model::Target;

pub struct Reject;

impl Extension for Reject {
    fn name(&self) -> &'static str {
        "REJECT"
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
        Value::Target(Target::Reject(DEFAULT))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        parse(v.as_target(), arg, cx)
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        let Target::Reject(with) = t else { return };
        let _ = write!(out, " --reject-with {}", name_of(*with));
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        let Target::Reject(with) = t else { return };
        let _ = write!(out, " reject-with {}", name_of(*with));
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        let Target::Reject(with) = t else {
            unreachable!("REJECT's target")
        };
        action.reject_with = *with;
        verdict::REJECT
    }
}

pub const ENTRIES: [Entry; 1] = [entry("reject-with", 0, false, 0)];

/// The default, icmp-port-unreachable.
pub const DEFAULT: u32 = reject::icmp(3, 3);

/// libipt_REJECT's `reject_table` in its order (parsing takes the first name or alias the
/// text is a prefix of, in any case): name, alias, what the data plane sends.
pub const NAMES: [(&str, &str, u32); 8] = [
    ("icmp-net-unreachable", "net-unreach", reject::icmp(3, 0)),
    ("icmp-host-unreachable", "host-unreach", reject::icmp(3, 1)),
    (
        "icmp-proto-unreachable",
        "proto-unreach",
        reject::icmp(3, 2),
    ),
    ("icmp-port-unreachable", "port-unreach", reject::icmp(3, 3)),
    ("icmp-net-prohibited", "net-prohib", reject::icmp(3, 9)),
    ("icmp-host-prohibited", "host-prohib", reject::icmp(3, 10)),
    ("tcp-reset", "tcp-rst", reject::TCP_RESET),
    ("icmp-admin-prohibited", "admin-prohib", reject::icmp(3, 13)),
];

pub fn name_of(with: u32) -> &'static str {
    NAMES
        .iter()
        .find(|(.., w)| *w == with)
        .map_or("icmp-port-unreachable", |(name, ..)| name)
}

fn prefix_of(text: &str, name: &str) -> bool {
    text.len() <= name.len() && name.as_bytes()[..text.len()].eq_ignore_ascii_case(text.as_bytes())
}

pub fn parse(t: &mut Target, text: &str, cx: &mut Context) -> Result<()> {
    if let Some((.., with)) = NAMES
        .iter()
        .find(|(name, alias, _)| prefix_of(text, name) || prefix_of(text, alias))
    {
        *t = Target::Reject(*with);
        return Ok(());
    }
    if prefix_of(text, "echo-reply") || prefix_of(text, "echoreply") {
        cx.warnings
            .push("--reject-with echo-reply no longer supported\n".into());
    }
    Err(crate::xtables::param(format!(
        "unknown reject type \"{text}\""
    )))
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "REJECT target options:\n",
    "--reject-with type              drop input packet and send back\n",
    "                                a reply packet according to type:\n",
    "Valid reject types:\n",
    "    icmp-net-unreachable     \tICMP network unreachable\n",
    "    net-unreach              \talias\n",
    "    icmp-host-unreachable    \tICMP host unreachable\n",
    "    host-unreach             \talias\n",
    "    icmp-proto-unreachable   \tICMP protocol unreachable\n",
    "    proto-unreach            \talias\n",
    "    icmp-port-unreachable    \tICMP port unreachable (default)\n",
    "    port-unreach             \talias\n",
    "    icmp-net-prohibited      \tICMP network prohibited\n",
    "    net-prohib               \talias\n",
    "    icmp-host-prohibited     \tICMP host prohibited\n",
    "    host-prohib              \talias\n",
    "    tcp-reset                \tTCP RST packet\n",
    "    tcp-rst                  \talias\n",
    "    icmp-admin-prohibited    \tICMP administratively prohibited (*)\n",
    "    admin-prohib             \talias\n",
    "\n",
    "(*) See man page or read the INCOMPATIBILITES file for compatibility issues.\n",
);
