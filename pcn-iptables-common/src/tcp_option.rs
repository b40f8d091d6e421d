//! `-m tcp --tcp-option`: xt_tcpudp's `tcp_find_option`, over the kinds the parse met walking
//! a TCP packet's options (`PacketInfo::tcp_kinds`).

use crate::{Action, PacketInfo};

/// `Action::tcp_option_flags`
pub mod flag {
    pub const ON: u8 = 1;
    pub const INVERT: u8 = 2;
}

/// Bit 0 of `PacketInfo::tcp_kinds`: the options were walked (a whole TCP header). Kind 0
/// (END) shares it: `--tcp-option` takes 1 to 255.
pub const WALKED: u64 = 1;

/// Whether packet `pkt` passes rule action `a`'s `--tcp-option`: the kind is among its
/// options (options not walked, cut short, make xt_tcpudp drop the packet: `hotdrop::at`).
#[inline(always)]
pub fn matches(pkt: &PacketInfo, a: &Action) -> bool {
    let kinds = &pkt.tcp_kinds;
    if kinds[0] & WALKED == 0 {
        return false;
    }
    let k = a.tcp_option;
    let found = kinds[(k >> 6) as usize & 3] & (1 << (k & 63)) != 0;
    found != (a.tcp_option_flags & flag::INVERT != 0)
}
