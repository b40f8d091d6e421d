//! Packet parsing: the protocol constants, the one bounds-checked load (`ptr_at`), and the
//! IPv4 header fields the classifier and the connection tracker read.

use pcn_iptables_common::{
    PacketInfo, SPI_NONE, chain_flag, conntrack::ctstate, dccp_option, hotdrop, pkt_type,
    tcp_option, tcpmss,
};

use crate::dccp;
use crate::sctp::{self, Frame};
use crate::track;

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_ESP: u8 = 50;
pub(crate) const IPPROTO_AH: u8 = 51;
use pcn_iptables_common::{IPPROTO_DCCP, IPPROTO_SCTP, SPI_DCCP_TYPE};
pub(crate) const AF_INET: u8 = 2;
/// The SYN bit of a TCP header's flags.
const TCP_SYN: u8 = 0x02;
/// lo's ifindex in every network namespace.
pub(crate) const LOOPBACK_IFINDEX: u32 = 1;

/// A pointer to a `T` at `offset` of the packet `start..end`, `None` unless the whole `T` is
/// inside: the check the verifier wants to see before every direct packet access.
#[inline(always)]
pub(crate) fn ptr_at<T>(start: usize, end: usize, offset: usize) -> Option<*mut T> {
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Fills addresses, protocol, ports and length from the IPv4 packet at `l3`, and, as the
/// generation's `flags` ask, a TCP packet's options (`chain_flag::TCPMSS`, `TCP_OPTION`), an
/// SCTP packet's chunks (`chain_flag::SCTP_CHUNKS`, read through `frame`), a DCCP packet's
/// options (`chain_flag::DCCP_OPTION`, the same way) and its connection, tracked
/// (`chain_flag::TRACK`; `update`: the packet counts for it and moves its state); `None` when
/// the frame is not IPv4 we can read.
#[inline(always)]
pub(crate) fn parse_ipv4(
    ctx: *mut core::ffi::c_void,
    frame: Frame,
    pkt: &mut PacketInfo,
    start: usize,
    end: usize,
    flags: u32,
    update: bool,
) -> Option<()> {
    let ethertype = u16::from_be(unsafe { *ptr_at::<u16>(start, end, 12)? });
    if ethertype != ETH_P_IP {
        return None;
    }
    let ip = ptr_at::<[u8; 20]>(start, end, ETH_HLEN)?;
    let ip = unsafe { &*ip };
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    pkt.len = u16::from_be_bytes([ip[2], ip[3]]) as u32;
    pkt.ttl = ip[8];
    pkt.tos = ip[1];
    pkt.proto = ip[9];
    pkt.src = [ip[12], ip[13], ip[14], ip[15]];
    pkt.dst = [ip[16], ip[17], ip[18], ip[19]];
    if let Some(mac) = ptr_at::<[u8; 6]>(start, end, 6) {
        pkt.mac_src = unsafe { *mac };
    }
    if let Some(dst) = ptr_at::<[u8; 6]>(start, end, 0) {
        pkt.pkt_type = pkt_type::of_destination(unsafe { *dst });
    }
    let frag_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    pkt.fragment = (frag_offset != 0) as u8;
    pkt.has_ports = 0;
    pkt.sport = 0;
    pkt.dport = 0;
    pkt.has_icmp = 0;
    pkt.has_tcp_flags = 0;
    pkt.tcp_header_whole = 0;
    pkt.spi = SPI_NONE;
    pkt.sctp_walk = 0;
    pkt.dccp_walk = dccp_option::walk::NONE;
    pkt.mss_adds = 0;
    // A later TCP fragment has no MSS (none stays from an earlier packet).
    pkt.tcp_mss = tcpmss::MALFORMED;
    // What the kernel's matches read of the header is the IP packet's, not the frame's (a
    // TCP header whose options are cut short: `tcp_header_whole` below).
    pkt.cut = match ihl >= 20 {
        true => hotdrop::of(pkt.proto, frag_offset, pkt.len.saturating_sub(ihl as u32)),
        false => 0,
    };
    let l4 = ETH_HLEN + (ihl & 0x3c);
    if frag_offset == 0 && ihl >= 20 {
        match pkt.proto {
            IPPROTO_TCP | IPPROTO_UDP => {
                if let Some(ports) = ptr_at::<[u8; 4]>(start, end, l4) {
                    let ports = unsafe { &*ports };
                    pkt.sport = u16::from_be_bytes([ports[0], ports[1]]);
                    pkt.dport = u16::from_be_bytes([ports[2], ports[3]]);
                    pkt.has_ports = 1;
                }
                if pkt.proto == IPPROTO_TCP {
                    // The data offset with the flags: whether xt_TCPMSS has room to add an
                    // MSS option to a SYN.
                    if let Some(h) = ptr_at::<[u8; 2]>(start, end, l4 + 12) {
                        let [doff, tcp_flags] = unsafe { *h };
                        pkt.tcp_flags = tcp_flags;
                        pkt.has_tcp_flags = 1;
                        let header = (doff >> 4) as u32 * 4;
                        let segment = pkt.len.saturating_sub((ihl & 0x3c) as u32);
                        let whole = (header >= 20 && header <= segment) as u8;
                        pkt.tcp_header_whole = whole;
                        // xt_tcpmss drops it (and `--tcp-option`: `hotdrop::at`).
                        pkt.cut |= (whole ^ 1) * hotdrop::TCPMSS;
                        let syn = (tcp_flags & TCP_SYN) >> 1;
                        pkt.mss_adds = tcpmss::room_for_option(pkt.len, ihl, doff) & syn;
                    }
                    // A SYN's MSS option is looked for without `-m tcpmss` rules too:
                    // where `-j TCPMSS` adds one, the rules after it see 4 bytes more.
                    // One condition, computed without a branch: the walk is verified once.
                    let syn = (pkt.tcp_flags & TCP_SYN) as u32 * pkt.has_tcp_flags as u32;
                    let walk = core::hint::black_box(flags & chain_flag::TCPMSS | syn);
                    if walk != 0 {
                        let mss = tcp_mss(start, end, l4, ETH_HLEN + pkt.len as usize);
                        pkt.tcp_mss = mss;
                        // Without an MSS option (`tcpmss::NONE`, bit 16 alone).
                        pkt.mss_adds &= (mss >> 16) as u8 & 1;
                    }
                    if flags & chain_flag::TCP_OPTION != 0 {
                        let ip_end = ETH_HLEN + pkt.len as usize;
                        tcp_kinds(start, end, l4, ip_end, &mut pkt.tcp_kinds);
                    }
                }
            }
            IPPROTO_ESP | IPPROTO_AH | IPPROTO_SCTP => {
                // The SPI: an ESP header's first word, an AH header's second; SCTP's ports.
                let at = l4 + if pkt.proto == IPPROTO_AH { 4 } else { 0 };
                if let Some(spi) = ptr_at::<[u8; 4]>(start, end, at) {
                    pkt.spi = u32::from_be_bytes(unsafe { *spi }) as u64;
                }
                if pkt.proto == IPPROTO_SCTP && flags & chain_flag::SCTP_CHUNKS != 0 {
                    sctp::walk(frame, l4);
                }
            }
            IPPROTO_DCCP => {
                // The ports and the type, of a whole generic header (xt_dccp's).
                if let Some(h) = ptr_at::<[u8; 12]>(start, end, l4) {
                    let h = unsafe { &*h };
                    let ports = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
                    pkt.spi = ports | ((h[8] >> 1) as u64 & 0x0f) << SPI_DCCP_TYPE;
                }
                if flags & chain_flag::DCCP_OPTION != 0 {
                    dccp::walk(frame, l4);
                }
            }
            IPPROTO_ICMP => {
                if let Some(icmp) = ptr_at::<[u8; 2]>(start, end, l4) {
                    let icmp = unsafe { &*icmp };
                    pkt.icmp_type = icmp[0];
                    pkt.icmp_code = icmp[1];
                    pkt.has_icmp = 1;
                }
            }
            _ => {}
        }
    }
    if flags & chain_flag::TRACK != 0 && pkt.untracked == 0 {
        track::track(ctx, pkt, start, end, update);
    } else {
        pkt.ct_commit = 0;
        pkt.ctstate = match pkt.untracked {
            0 => ctstate::INVALID,
            _ => ctstate::UNTRACKED,
        };
        pkt.ct_mark = 0;
        pkt.ct_reply = 0;
        pkt.ct_nat = 0;
        pkt.ct_rewritten = 0;
        pkt.ct_looped = 0;
        pkt.ct_status = 0;
        pkt.ct_expires = 0;
    }
    Some(())
}

/// The MSS option of the TCP header at `l4`, walked as xt_tcpmss's `tcpmss_mt` walks the
/// options (an option's length is read only where its kind asks).
#[inline(always)]
fn tcp_mss(start: usize, end: usize, l4: usize, ip_end: usize) -> u32 {
    let Some((opts, optlen)) = tcp_options(start, end, l4, ip_end) else {
        return tcpmss::MALFORMED;
    };
    let mut i = 0;
    // One byte a step at least: 40 steps cover every header.
    for _ in 0..tcpmss::MAX_OPTIONS {
        if i >= optlen {
            break;
        }
        // A last byte has no pair: an END or NOP (an MSS option would not fit).
        let Some([kind, next]) = pair_at(start, end, opts + i) else {
            break;
        };
        if kind == 2 && optlen - i >= 4 && next == 4 {
            return match pair_at(start, end, opts + i + 2) {
                Some(v) => u16::from_be_bytes(v) as u32,
                None => tcpmss::MALFORMED,
            };
        }
        i += if kind < 2 || next == 0 {
            1
        } else {
            next as usize
        };
    }
    tcpmss::NONE
}

/// The option kinds of the TCP header at `l4` (`PacketInfo::tcp_kinds`), walked as xt_tcpudp's
/// `tcp_find_option` walks them: none where the header is cut short.
#[inline(always)]
fn tcp_kinds(start: usize, end: usize, l4: usize, ip_end: usize, kinds: &mut [u64; 4]) {
    *kinds = [0; 4];
    let Some((opts, optlen)) = tcp_options(start, end, l4, ip_end) else {
        return;
    };
    // Kind 0 (END) lands on WALKED's bit: `--tcp-option` never asks for it.
    kinds[0] = tcp_option::WALKED;
    let record = |kinds: &mut [u64; 4], kind: u8| kinds[(kind >> 6) as usize] |= 1 << (kind & 63);
    let mut i = 0;
    for _ in 0..tcpmss::MAX_OPTIONS {
        if i >= optlen {
            break;
        }
        // Read in pairs (a one-byte read's bounds check is one some verifiers do not follow).
        let Some([kind, next]) = pair_at(start, end, opts + i) else {
            // The header's last byte, where the packet ends: its kind, and the walk is over
            // (an option there has no length).
            if let Some([_, kind]) = pair_at(start, end, opts + i - 1) {
                record(kinds, kind);
            }
            break;
        };
        record(kinds, kind);
        i += if kind < 2 || next == 0 {
            1
        } else {
            next as usize
        };
    }
}

/// Where the options of the TCP header at `l4` start, and their length; `None` where the
/// header is cut short, before the frame's end or the IP packet's (`ip_end`: the kernel's
/// matches do not read into a frame's padding).
#[inline(always)]
fn tcp_options(start: usize, end: usize, l4: usize, ip_end: usize) -> Option<(usize, usize)> {
    let [doff, _] = pair_at(start, end, l4 + 12)?;
    let len = ((doff >> 4) as usize) * 4;
    if len < 20 || l4 + len > ip_end {
        return None;
    }
    pair_at(start, end, l4 + len - 2)?;
    Some((l4 + 20, len - 20))
}

/// The packet's two bytes at `offset` (below 256: the TCP header's end at most), if it has
/// them; the offset bounded where the verifier sees it.
#[inline(always)]
fn pair_at(start: usize, end: usize, offset: usize) -> Option<[u8; 2]> {
    let p = ptr_at::<[u8; 2]>(start, end, core::hint::black_box(offset) & 0xff)?;
    Some(unsafe { *p })
}
