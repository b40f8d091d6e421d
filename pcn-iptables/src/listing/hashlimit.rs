//! A `-m hashlimit` table, one bucket a line as /proc/net/ipt_hashlimit/NAME shows it: its
//! seconds left, key, credit (brought up to now), credit cap and cost.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use pcn_iptables_common::hashlimit::{Bucket, Key, Table};

/// The buckets of `table` at jiffies `now`, those its garbage collection dropped left out.
pub fn render(table: &Table, buckets: &[(Key, Bucket)], now: u64) -> String {
    let mut out = String::new();
    for (key, bucket) in buckets {
        if table.gone(bucket, now) {
            continue;
        }
        let mut b = *bucket;
        table.recalc(&mut b, now);
        let left = (b.expires.wrapping_sub(now) as i64) / table.hz.max(1) as i64;
        let _ = writeln!(
            out,
            "{left} {}:{}->{}:{} {} {} {}",
            Ipv4Addr::from(key.src),
            u16::from_be(key.sport),
            Ipv4Addr::from(key.dst),
            u16::from_be(key.dport),
            b.credit,
            b.credit_cap,
            b.cost
        );
    }
    out
}
