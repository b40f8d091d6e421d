//! The connection table as a human table (`pcn-iptables --conntrack`), like `conntrack -L`.

use std::net::Ipv4Addr;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use pcn_iptables_common::conntrack::{CtEntry, CtKey, status, tcp};

fn proto_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        p => p.to_string(),
    }
}

/// One row per connection, original direction first, soonest to expire last.
pub fn render(mut entries: Vec<(CtKey, CtEntry)>, now: u64) -> String {
    entries.sort_by_key(|(_, e)| std::cmp::Reverse(e.expires));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "proto",
        "state",
        "source",
        "sport",
        "destination",
        "dport",
        "timeout",
        "packets",
        "bytes",
        "",
    ]);
    for (key, e) in &entries {
        let (o, r) = (e.origin as usize & 1, 1 - (e.origin as usize & 1));
        let state = match key.proto {
            6 => tcp::NAMES
                .get(e.tcp_state as usize)
                .copied()
                .unwrap_or("?")
                .to_string(),
            _ => String::new(),
        };
        let ports = |i: usize| match key.proto {
            6 | 17 => key.port[i].to_string(),
            _ => String::new(),
        };
        let (sport, dport) = match key.proto {
            // ICMP keys hold the query's id (the sender's end) and type.
            1 => (
                format!("id={}", key.port[o]),
                format!("type={}", key.port[r]),
            ),
            _ => (ports(o), ports(r)),
        };
        table.add_row([
            proto_name(key.proto),
            state,
            Ipv4Addr::from(key.addr[o]).to_string(),
            sport,
            Ipv4Addr::from(key.addr[r]).to_string(),
            dport,
            format!("{}s", e.expires.saturating_sub(now) / 1_000_000_000),
            format!("{} / {}", e.packets[0], e.packets[1]),
            format!("{} / {}", e.bytes[0], e.bytes[1]),
            if e.status & status::SEEN_REPLY == 0 {
                "[UNREPLIED]".into()
            } else {
                String::new()
            },
        ]);
    }
    let noun = if entries.len() == 1 {
        "connection"
    } else {
        "connections"
    };
    format!("{table}\n{} {noun}\n", entries.len())
}
