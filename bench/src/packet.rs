//! 64-byte test frames (Ethernet + IPv4 + UDP or TCP + zero payload) for BPF_PROG_TEST_RUN,
//! and the same traffic as a trafgen configuration for the packet-rate runs.

use crate::rules::{Flow, Proto};

/// Frame length, Ethernet header included (no FCS).
pub const FRAME_LEN: usize = 64;
const ETH_HLEN: usize = 14;
const IP_HLEN: usize = 20;
/// The source port of single test packets; trafgen varies it instead.
pub const SPORT: u16 = 1024;
/// trafgen's source ports, one flow each: at least one flow per rule (16,384).
pub const SPORT_RANGE: (u16, u16) = (1024, 65535);

/// The Internet checksum of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 64-byte frame of `flow` (a TCP SYN for TCP), with a valid IPv4 header checksum. The L4
/// checksum is left zero: nothing on the XDP path checks it.
pub fn frame(flow: &Flow, proto: Proto) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[ETH_HLEN..ETH_HLEN + IP_HLEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((FRAME_LEN - ETH_HLEN) as u16).to_be_bytes());
    ip[8] = 64; // TTL
    ip[9] = proto.number();
    ip[12..16].copy_from_slice(&flow.src.octets());
    ip[16..20].copy_from_slice(&flow.dst.octets());
    let csum = checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let l4 = &mut f[ETH_HLEN + IP_HLEN..];
    l4[0..2].copy_from_slice(&SPORT.to_be_bytes());
    l4[2..4].copy_from_slice(&flow.dport.to_be_bytes());
    match proto {
        Proto::Udp => {
            let len = (FRAME_LEN - ETH_HLEN - IP_HLEN) as u16;
            l4[4..6].copy_from_slice(&len.to_be_bytes());
        }
        Proto::Tcp => {
            l4[4..8].copy_from_slice(&1u32.to_be_bytes()); // sequence number
            l4[12] = 5 << 4; // data offset: 20 bytes
            l4[13] = 0x02; // SYN
            l4[14..16].copy_from_slice(&65535u16.to_be_bytes()); // window
        }
    }
    f
}

/// A trafgen configuration sending `flow` as 64-byte UDP frames to `dst_mac`, the source port
/// counting through `SPORT_RANGE` (one flow per port). trafgen fills in lengths and checksums.
pub fn trafgen_config(flow: &Flow, dst_mac: &str) -> String {
    let payload = FRAME_LEN - ETH_HLEN - IP_HLEN - 8;
    format!(
        "{{\n  eth(da={dst_mac}),\n  ipv4(sa={src}, da={dst}, ttl=64),\n  \
         udp(sp=dinc({lo}, {hi}), dp={dport}),\n  fill(0, {payload})\n}}\n",
        src = flow.src,
        dst = flow.dst,
        lo = SPORT_RANGE.0,
        hi = SPORT_RANGE.1,
        dport = flow.dport,
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ip_header_checksum_verifies() {
        let flow = Flow {
            src: Ipv4Addr::new(198, 19, 0, 128),
            dst: Ipv4Addr::new(198, 18, 128, 128),
            dport: 1000,
        };
        for proto in [Proto::Udp, Proto::Tcp] {
            let f = frame(&flow, proto);
            assert_eq!(checksum(&f[ETH_HLEN..ETH_HLEN + IP_HLEN]), 0);
            assert_eq!(f[ETH_HLEN + 9], proto.number());
            assert_eq!(u16::from_be_bytes([f[36], f[37]]), 1000);
        }
    }
}
