//! Network address translation on tracked connections, as netfilter's nf_nat does it: a
//! connection's mapping is chosen once, for its first packet, and stored in its entry as the
//! reply tuple; every later packet of either direction is rewritten from it.
//!
//! A packet of the original direction carries the original tuple O and leaves as the inverse
//! of the reply tuple R; a reply carries R and leaves as the inverse of O. The destination is
//! rewritten before routing (PREROUTING, OUTPUT), the source after it (POSTROUTING, INPUT).

use super::{CtEntry, CtKey, Tuple, nat_flag, status};

/// An address and a port (ICMP: the query's id) to write into a packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: [u8; 4],
    pub port: u16,
}

/// The first packet's tuple of the connection stored under `key`.
#[inline(always)]
pub fn original(key: &CtKey, entry: &CtEntry) -> Tuple {
    // Both ends read, then picked by a mask: a pick of where to read (an index, or a branch
    // the eBPF compiler turns into one) would be arithmetic the verifier refuses on a pointer.
    let (a, p) = (key.addr.map(u32::from_ne_bytes), key.port);
    let m = 0u32.wrapping_sub((entry.origin & 1) as u32);
    let pick = |x: u32, y: u32| x & !m | y & m;
    Tuple {
        src: pick(a[0], a[1]).to_ne_bytes(),
        dst: pick(a[1], a[0]).to_ne_bytes(),
        sport: pick(p[0] as u32, p[1] as u32) as u16,
        dport: pick(p[1] as u32, p[0] as u32) as u16,
        proto: key.proto,
        _pad: 0,
    }
}

/// The tuple its replies carry.
#[inline(always)]
pub fn reply(key: &CtKey, entry: &CtEntry) -> Tuple {
    if entry.nat & nat_flag::ENDS == 0 {
        return original(key, entry).inverse();
    }
    Tuple {
        src: entry.reply_addr[0],
        dst: entry.reply_addr[1],
        sport: entry.reply_port[0],
        dport: entry.reply_port[1],
        proto: key.proto,
        _pad: 0,
    }
}

/// The destination a packet of the connection gets before routing (`reply`: it goes the
/// reply way), if nat changes it.
#[inline(always)]
pub fn dst_manip(key: &CtKey, entry: &CtEntry, reply_way: bool) -> Option<Endpoint> {
    let (flag, new) = if reply_way {
        let o = original(key, entry);
        (nat_flag::SRC, (o.src, o.sport))
    } else {
        let r = reply(key, entry);
        (nat_flag::DST, (r.src, r.sport))
    };
    (entry.nat & flag != 0).then_some(Endpoint {
        addr: new.0,
        port: new.1,
    })
}

/// The source a packet of the connection gets after routing, if nat changes it.
#[inline(always)]
pub fn src_manip(key: &CtKey, entry: &CtEntry, reply_way: bool) -> Option<Endpoint> {
    let (flag, new) = if reply_way {
        let o = original(key, entry);
        (nat_flag::DST, (o.dst, o.dport))
    } else {
        let r = reply(key, entry);
        (nat_flag::SRC, (r.dst, r.dport))
    };
    (entry.nat & flag != 0).then_some(Endpoint {
        addr: new.0,
        port: new.1,
    })
}

/// Whether a packet of the connection is for a local socket (`reply`: it goes the reply way):
/// nat INPUT then rewrites its source, before the socket sees it.
#[inline(always)]
pub fn to_local(entry: &CtEntry, reply: bool) -> bool {
    let flag = if reply {
        nat_flag::LOCAL_OUT
    } else {
        nat_flag::LOCAL_IN
    };
    entry.nat & flag != 0
}

/// The connection's entry with its mapping: `translated` is the first packet's tuple once
/// rewritten (its inverse is the reply tuple). Which ends moved decides the flags; a mapping
/// that moves nothing is no mapping. `local`: `nat_flag::LOCAL_*`, kept with a mapping.
#[inline(always)]
pub fn map(entry: &mut CtEntry, original: &Tuple, translated: &Tuple, local: u8) {
    let mut nat = 0;
    if (translated.src, translated.sport) != (original.src, original.sport) {
        nat |= nat_flag::SRC;
    }
    if (translated.dst, translated.dport) != (original.dst, original.dport) {
        nat |= nat_flag::DST;
    }
    entry.nat = if nat != 0 { nat | local } else { 0 };
    if nat != 0 {
        let r = translated.inverse();
        entry.reply_addr = [r.src, r.dst];
        entry.reply_port = [r.sport, r.dport];
    }
}

/// The entry under a translated connection's reply key, leading to `key`.
#[inline(always)]
pub fn alias(key: &CtKey) -> CtEntry {
    CtEntry {
        status: status::ALIAS,
        expires: u64::MAX,
        reply_addr: key.addr,
        reply_port: key.port,
        ..Default::default()
    }
}

/// The connection key an alias leads to.
#[inline(always)]
pub fn aliased(key: &CtKey, alias: &CtEntry) -> CtKey {
    CtKey {
        addr: alias.reply_addr,
        port: alias.reply_port,
        proto: key.proto,
        _pad: [0; 3],
    }
}

/// The tuple of a connection translated both ways as its packets carry it between the two
/// rewrites (after PREROUTING's, before POSTROUTING's): the original way's source to the reply
/// way's source. `None` unless nat rewrites both ends.
#[inline(always)]
pub fn midway(key: &CtKey, entry: &CtEntry) -> Option<Tuple> {
    if entry.nat & nat_flag::ENDS != nat_flag::ENDS {
        return None;
    }
    let (o, r) = (original(key, entry), reply(key, entry));
    Some(Tuple {
        src: o.src,
        dst: r.src,
        sport: o.sport,
        dport: r.sport,
        proto: key.proto,
        _pad: 0,
    })
}

/// Whether the alias under `alias_key` still belongs to `entry`, the connection it leads to:
/// live, and translated to that very reply tuple, or midway tuple (a connection reopened on
/// the same tuple may map differently, leaving the old alias behind).
#[inline(always)]
pub fn alias_of(alias_key: &CtKey, key: &CtKey, entry: &CtEntry, now: u64) -> bool {
    entry.status & status::ALIAS == 0
        && entry.expires > now
        && entry.nat & nat_flag::ENDS != 0
        && (reply(key, entry).key().0 == *alias_key
            || midway(key, entry).is_some_and(|m| m.key().0 == *alias_key))
}

/// Whether a packet whose source is end `src_end` of `alias_key` goes the reply way of the
/// connection the alias leads to: it comes from the reply tuple's source (otherwise it is a
/// packet of the original way that nat already rewrote, in part or whole).
#[inline(always)]
pub fn alias_reply(alias_key: &CtKey, src_end: u8, key: &CtKey, entry: &CtEntry) -> bool {
    let r = reply(key, entry);
    // Picked by a mask, not an index (see `original`).
    let (a, p) = (alias_key.addr.map(u32::from_ne_bytes), alias_key.port);
    let m = 0u32.wrapping_sub((src_end & 1) as u32);
    let pick = |x: u32, y: u32| x & !m | y & m;
    (pick(a[0], a[1]), pick(p[0] as u32, p[1] as u32) as u16)
        == (u32::from_ne_bytes(r.src), r.sport)
}

/// The address NETMAP maps `addr` to: the network of `to` (`[first, last]` of the range),
/// the host part of `addr`.
pub fn netmap(addr: [u8; 4], to: [[u8; 4]; 2]) -> [u8; 4] {
    let (first, last) = (u32::from_be_bytes(to[0]), u32::from_be_bytes(to[1]));
    let mask = !(first ^ last);
    (u32::from_be_bytes(addr) & !mask | first & mask).to_be_bytes()
}

/// The address of `[first, last]` for a connection hashing to `hash` (nf_nat's
/// find_best_ips_proto: the same client keeps the same address).
pub fn pick_addr(range: [[u8; 4]; 2], hash: u32) -> [u8; 4] {
    let (first, last) = (u32::from_be_bytes(range[0]), u32::from_be_bytes(range[1]));
    if last <= first {
        return range[0];
    }
    let size = (last - first) as u64 + 1;
    (first + ((hash as u64 * size) >> 32) as u32).to_be_bytes()
}

/// A mixing hash of the addresses a mapping's address choice depends on.
pub fn addr_hash(src: [u8; 4], dst: [u8; 4]) -> u32 {
    let x = (u32::from_be_bytes(src) as u64) << 32 | u32::from_be_bytes(dst) as u64;
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (x ^ (x >> 33)) as u32
}

/// Where nf_nat_l4proto_unique_tuple looks for a free port (ICMP: id) for the manipulated
/// end, whose port is now `port`: `(first, count)`, or `None` when the port must stay (a
/// destination without `--to-destination :PORT`).
pub fn port_search(
    proto: u8,
    flags: u32,
    range: [u16; 2],
    port: u16,
    src: bool,
) -> Option<(u16, u32)> {
    use crate::nat_range::PROTO_SPECIFIED;
    if flags & PROTO_SPECIFIED != 0 {
        let (first, last) = (range[0], range[1].max(range[0]));
        return Some((first, (last - first) as u32 + 1));
    }
    // ICMP: the query's id, on the source's side.
    if proto == 1 {
        return src.then_some((0, 65536));
    }
    if !src {
        return None;
    }
    // Loose convention: below 512 is credential passing, below 1024 privileged.
    Some(match port {
        0..512 => (1, 511),
        512..1024 => (600, 424),
        _ => (1024, 65536 - 1024),
    })
}

/// Whether nf_nat keeps the connection's own port when it is free: not with `--random` or
/// `--random-fully`, and with a port range only if the port lies in it.
pub fn may_keep_port(flags: u32, range: [u16; 2], port: u16) -> bool {
    use crate::nat_range::{PROTO_RANDOM, PROTO_RANDOM_FULLY, PROTO_SPECIFIED};
    if flags & (PROTO_RANDOM | PROTO_RANDOM_FULLY) != 0 {
        return false;
    }
    flags & PROTO_SPECIFIED == 0 || (range[0] <= port && port <= range[1])
}

/// Ports one search tries at most (NF_NAT_MAX_ATTEMPTS).
pub const MAX_ATTEMPTS: u32 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
        Tuple {
            src,
            dst,
            sport,
            dport,
            proto: 6,
            _pad: 0,
        }
    }

    const CLIENT: [u8; 4] = [198, 18, 0, 2];
    const ROUTER: [u8; 4] = [198, 19, 0, 1];
    const SERVER: [u8; 4] = [198, 19, 0, 2];
    const INSIDE: [u8; 4] = [198, 18, 0, 1];

    /// An entry for `o` mapped to `t`, and its key.
    fn mapped(o: &Tuple, t: &Tuple) -> (CtKey, CtEntry) {
        let (key, origin) = o.key();
        let mut e = CtEntry {
            origin,
            expires: 100,
            ..Default::default()
        };
        map(&mut e, o, t, 0);
        (key, e)
    }

    #[test]
    fn masquerade_rewrites_the_source_out_and_the_destination_back() {
        let o = tuple(CLIENT, 40000, SERVER, 80);
        let t = tuple(ROUTER, 40001, SERVER, 80);
        let (key, e) = mapped(&o, &t);
        assert_eq!(e.nat, nat_flag::SRC);
        assert_eq!(original(&key, &e), o);
        assert_eq!(reply(&key, &e), t.inverse());
        assert_eq!(dst_manip(&key, &e, false), None);
        let out = src_manip(&key, &e, false).unwrap();
        assert_eq!((out.addr, out.port), (ROUTER, 40001));
        let back = dst_manip(&key, &e, true).unwrap();
        assert_eq!((back.addr, back.port), (CLIENT, 40000));
        assert_eq!(src_manip(&key, &e, true), None);
    }

    #[test]
    fn dnat_rewrites_the_destination_in_and_the_source_back() {
        let o = tuple(SERVER, 5555, ROUTER, 8080);
        let t = tuple(SERVER, 5555, CLIENT, 80);
        let (key, e) = mapped(&o, &t);
        assert_eq!(e.nat, nat_flag::DST);
        let d = dst_manip(&key, &e, false).unwrap();
        assert_eq!((d.addr, d.port), (CLIENT, 80));
        let s = src_manip(&key, &e, true).unwrap();
        assert_eq!((s.addr, s.port), (ROUTER, 8080));
        assert_eq!(src_manip(&key, &e, false), None);
        assert_eq!(dst_manip(&key, &e, true), None);
    }

    #[test]
    fn an_alias_leads_back_to_its_connection() {
        let o = tuple(CLIENT, 40000, SERVER, 80);
        let t = tuple(INSIDE, 40000, SERVER, 80);
        let (key, e) = mapped(&o, &t);
        let (reply_key, _) = reply(&key, &e).key();
        assert_ne!(reply_key, key);
        assert_eq!(aliased(&reply_key, &alias(&key)), key);
        assert!(alias_of(&reply_key, &key, &e, 0));
        let (_, from_server) = t.inverse().key();
        assert!(alias_reply(&reply_key, from_server, &key, &e));
        assert!(!alias_reply(&reply_key, 1 - from_server, &key, &e));
        assert!(!alias_of(&reply_key, &key, &e, e.expires));
        let remapped = tuple(INSIDE, 40001, SERVER, 80);
        let (_, again) = mapped(&o, &remapped);
        assert!(!alias_of(&reply_key, &key, &again, 0));
    }

    #[test]
    fn both_ways_have_a_midway_tuple() {
        // A published port reached from inside, masqueraded on the way out.
        let o = tuple(CLIENT, 40000, ROUTER, 8080);
        let t = tuple(ROUTER, 41000, SERVER, 80);
        let (key, e) = mapped(&o, &t);
        let m = midway(&key, &e).unwrap();
        assert_eq!(
            (m.src, m.sport, m.dst, m.dport),
            (CLIENT, 40000, SERVER, 80)
        );
        let (mid_key, from_server) = m.inverse().key();
        assert!(alias_of(&mid_key, &key, &e, 0));
        assert!(alias_reply(&mid_key, from_server, &key, &e));
        assert!(!alias_reply(&mid_key, 1 - from_server, &key, &e));
        let (masq_key, masq) = mapped(&o, &tuple(ROUTER, 41000, ROUTER, 8080));
        assert_eq!(midway(&masq_key, &masq), None);
    }

    #[test]
    fn no_change_is_no_mapping() {
        let o = tuple(CLIENT, 40000, SERVER, 80);
        let (key, e) = mapped(&o, &o);
        assert_eq!(e.nat, 0);
        assert_eq!(reply(&key, &e), o.inverse());
    }

    #[test]
    fn netmap_keeps_the_host_part() {
        let to = [[10, 1, 0, 0], [10, 1, 255, 255]];
        assert_eq!(netmap([198, 18, 3, 4], to), [10, 1, 3, 4]);
        assert_eq!(
            netmap([198, 18, 3, 4], [[10, 0, 0, 9], [10, 0, 0, 9]]),
            [10, 0, 0, 9]
        );
    }

    #[test]
    fn addresses_are_picked_within_the_range() {
        let range = [[198, 18, 0, 10], [198, 18, 0, 13]];
        let mut seen = [false; 4];
        for i in 0..64u32 {
            let a = pick_addr(range, addr_hash([198, 18, 1, i as u8], SERVER));
            assert!((10..=13).contains(&a[3]) && a[..3] == [198, 18, 0]);
            seen[(a[3] - 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "every address gets used: {seen:?}");
        assert_eq!(pick_addr([SERVER, SERVER], 12345), SERVER);
    }

    #[test]
    fn port_searches_follow_nf_nat() {
        use crate::nat_range::*;
        assert_eq!(
            port_search(6, PROTO_SPECIFIED, [20000, 20099], 5, true),
            Some((20000, 100))
        );
        assert_eq!(port_search(6, 0, [0, 0], 40000, false), None);
        assert_eq!(port_search(6, 0, [0, 0], 40000, true), Some((1024, 64512)));
        assert_eq!(port_search(17, 0, [0, 0], 700, true), Some((600, 424)));
        assert_eq!(port_search(6, 0, [0, 0], 22, true), Some((1, 511)));
        assert_eq!(port_search(1, 0, [0, 0], 7, true), Some((0, 65536)));
        assert_eq!(port_search(1, 0, [0, 0], 7, false), None);
        assert!(may_keep_port(0, [0, 0], 40000));
        assert!(!may_keep_port(PROTO_SPECIFIED, [20000, 20099], 40000));
        assert!(may_keep_port(PROTO_SPECIFIED, [20000, 20099], 20050));
        assert!(!may_keep_port(PROTO_RANDOM_FULLY, [0, 0], 40000));
    }
}
