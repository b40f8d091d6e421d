//! A `-m recent` list, one address a line as /proc/net/xt_recent/NAME shows it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::dataplane::recent::Seen;

pub fn render(entries: &[Seen]) -> String {
    let mut out = String::new();
    for e in entries {
        let _ = write!(
            out,
            "src={} ttl: {} last_seen: {} oldest_pkt: {}",
            Ipv4Addr::from(e.addr),
            e.ttl,
            e.last_seen,
            e.index
        );
        for (i, t) in e.stamps.iter().enumerate() {
            let _ = write!(out, "{} {t}", if i > 0 { "," } else { "" });
        }
        out.push('\n');
    }
    out
}
