//! The connection table as a human table (`pcn-iptables --conntrack`), like `conntrack -L`.

use std::net::Ipv4Addr;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use pcn_iptables_common::conntrack::{CtEntry, CtKey, Tuple, nat, nat_flag, status, tcp};

fn proto_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        p => p.to_string(),
    }
}

/// A translated connection's reply tuple, as `conntrack -L` gives it (`src=… dst=… sport=…
/// dport=…`), and what nat did (`[SNAT]`, `[DNAT]`); empty for the others.
fn reply(key: &CtKey, e: &CtEntry) -> (String, String) {
    if e.nat & nat_flag::ENDS == 0 {
        return (String::new(), String::new());
    }
    let r: Tuple = nat::reply(key, e);
    let ports = match key.proto {
        6 | 17 => format!(" sport={} dport={}", r.sport, r.dport),
        // The reply's "ports" are the query's type and id.
        1 => format!(" id={}", r.dport),
        _ => String::new(),
    };
    let what = [(nat_flag::SRC, "[SNAT]"), (nat_flag::DST, "[DNAT]")]
        .iter()
        .filter(|(f, _)| e.nat & f != 0)
        .map(|(_, w)| *w)
        .collect::<Vec<_>>()
        .join(" ");
    (
        format!(
            "src={} dst={}{ports}",
            Ipv4Addr::from(r.src),
            Ipv4Addr::from(r.dst)
        ),
        what,
    )
}

/// One row per connection (its original direction, then its reply tuple if nat translates
/// it), soonest to expire last. An alias (a translated connection's reply key) is no row.
pub fn render(mut entries: Vec<(CtKey, CtEntry)>, now: u64) -> String {
    entries.retain(|(_, e)| e.status & status::ALIAS == 0);
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
        "mark",
        "",
        "reply (nat)",
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
        let (reply, what) = reply(key, e);
        table.add_row([
            proto_name(key.proto),
            state,
            Ipv4Addr::from(key.addr[o]).to_string(),
            sport,
            Ipv4Addr::from(key.addr[r]).to_string(),
            dport,
            format!("{}s", e.expires.saturating_sub(now) / 1_000_000_000),
            e.mark.to_string(),
            [
                (e.status & status::SEEN_REPLY == 0).then_some("[UNREPLIED]"),
                (!what.is_empty()).then_some(what.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
            reply,
        ]);
    }
    let noun = if entries.len() == 1 {
        "connection"
    } else {
        "connections"
    };
    format!("{table}\n{} {noun}\n", entries.len())
}
