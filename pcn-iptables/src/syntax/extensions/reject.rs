//! libipt_REJECT: `--reject-with` an ICMP error or `tcp-reset`.

use super::{Context, Entry, entry};
use crate::error::Result;
use crate::ruleset::model::Target;
use pcn_iptables_common::reject;

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
    Err(super::param(format!("unknown reject type \"{text}\"")))
}
