//! `-m sctp --chunk-types`: the walk over an SCTP packet's chunks that the parse makes for
//! generations with such a rule (`pcn_iptables_common::sctp_chunks`). A packet's chunk count
//! has no bound but its length, so the walk is a `bpf_loop` whose step reads one chunk header
//! with the hook's load helper; the walk's position lives in the packet's per-CPU map value,
//! which the verifier does not track, so the step verifies once. The walk is a global
//! function per hook: the verifier checks it once, not once per path of the entry program
//! that parses.

use core::ffi::c_void;

use aya_ebpf::bindings::{__sk_buff, xdp_md};
use aya_ebpf::helpers::generated as h;
use pcn_iptables_common::{PacketInfo, sctp_chunks};

use crate::maps::{PCN_PACKETS, TC, XDP};

/// The program context the parse reads chunk headers through.
#[derive(Clone, Copy)]
pub(crate) enum Frame {
    Xdp(*mut xdp_md),
    Tc(*mut __sk_buff),
}

/// Walks the chunks of the SCTP packet whose header is at frame offset `l4` (see
/// `pcn_iptables_common::sctp_chunks::start`).
#[inline(always)]
pub(crate) fn walk(frame: Frame, l4: usize) {
    match frame {
        Frame::Xdp(ctx) => pcn_sctp_chunks_xdp(ctx, l4 as u32),
        Frame::Tc(skb) => pcn_sctp_chunks_tc(skb, l4 as u32),
    };
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_sctp_chunks_xdp(ctx: *mut xdp_md, l4: u32) -> u32 {
    run(XDP, ctx as *mut c_void, l4, xdp_step)
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_sctp_chunks_tc(skb: *mut __sk_buff, l4: u32) -> u32 {
    run(TC, skb as *mut c_void, l4, tc_step)
}

/// The walk's context for `bpf_loop`'s callback.
struct Walking {
    ctx: *mut c_void,
    pkt: *mut PacketInfo,
}

/// The walk of the packet of `hook` (its info in `PCN_PACKETS`), from the chunk after the
/// common header up to the IP packet's end (as xt_sctp walks up to `skb->len`, not into a
/// frame's padding), when that header is whole (xt_sctp drops a packet cut shorter).
#[inline(always)]
fn run(hook: u32, ctx: *mut c_void, l4: u32, step: extern "C" fn(u64, *mut c_void) -> i64) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(hook) else {
        return 0;
    };
    let end = crate::parse::ETH_HLEN as u32 + unsafe { (*pkt).len };
    if l4 + 12 > end {
        return 0;
    }
    sctp_chunks::start(unsafe { &mut *pkt }, l4 + 12, end);
    let mut w = Walking { ctx, pkt };
    unsafe {
        h::bpf_loop(
            sctp_chunks::MAX_CHUNKS,
            step as *mut c_void,
            &raw mut w as *mut c_void,
            0,
        );
    }
    0
}

extern "C" fn xdp_step(_: u64, walking: *mut c_void) -> i64 {
    step(walking, |ctx, at, buf| unsafe {
        h::bpf_xdp_load_bytes(ctx as *mut _, at, buf as *mut _, 4)
    })
}

extern "C" fn tc_step(_: u64, walking: *mut c_void) -> i64 {
    step(walking, |ctx, at, buf| unsafe {
        h::bpf_skb_load_bytes(ctx as *const _, at, buf as *mut _, 4)
    })
}

/// One chunk: 0 to go on, 1 once the walk is over.
#[inline(always)]
fn step(walking: *mut c_void, load: impl Fn(*mut c_void, u32, *mut u8) -> i64) -> i64 {
    // SAFETY: `run` passes its context, whose `pkt` is the packet's map value.
    let w = unsafe { &*(walking as *const Walking) };
    let pkt = unsafe { &mut *w.pkt };
    let more = sctp_chunks::step(pkt, |at| {
        let mut header = [0u8; 4];
        (load(w.ctx, at, header.as_mut_ptr()) == 0).then_some(header)
    });
    (!more) as i64
}
