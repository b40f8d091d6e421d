//! `-m dccp --dccp-option`: the walk over a DCCP packet's options that the parse makes for
//! generations with such a rule (`pcn_iptables_common::dccp_option`). The options run up to
//! the data offset, 1,008 bytes at most, so the walk is a `bpf_loop` whose step reads one
//! option's type and length with the hook's load helper, its position in the packet's per-CPU
//! map value (as `sctp`'s walk: the step verifies once), in a global function per hook.

use core::ffi::c_void;

use aya_ebpf::bindings::{__sk_buff, xdp_md};
use aya_ebpf::helpers::generated as h;
use pcn_iptables_common::{PacketInfo, dccp_option};

use crate::maps::{PCN_PACKETS, TC, XDP};
use crate::sctp::Frame;

/// Walks the options of the DCCP packet whose header is at frame offset `l4` (see
/// `pcn_iptables_common::dccp_option::start`).
#[inline(always)]
pub(crate) fn walk(frame: Frame, l4: usize) {
    match frame {
        Frame::Xdp(ctx) => pcn_dccp_options_xdp(ctx, l4 as u32),
        Frame::Tc(skb) => pcn_dccp_options_tc(skb, l4 as u32),
    };
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_dccp_options_xdp(ctx: *mut xdp_md, l4: u32) -> u32 {
    run(XDP, ctx as *mut c_void, l4, xdp_load, xdp_step)
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_dccp_options_tc(skb: *mut __sk_buff, l4: u32) -> u32 {
    run(TC, skb as *mut c_void, l4, tc_load, tc_step)
}

/// A hook's load helper: `len` bytes at frame offset `at` into `buf`, 0 when it could.
type Load = fn(*mut c_void, u32, *mut u8, u32) -> i64;

fn xdp_load(ctx: *mut c_void, at: u32, buf: *mut u8, len: u32) -> i64 {
    unsafe { h::bpf_xdp_load_bytes(ctx as *mut _, at, buf as *mut _, len) }
}

fn tc_load(ctx: *mut c_void, at: u32, buf: *mut u8, len: u32) -> i64 {
    unsafe { h::bpf_skb_load_bytes(ctx as *const _, at, buf as *mut _, len) }
}

/// The walk's context for `bpf_loop`'s callback.
struct Walking {
    ctx: *mut c_void,
    pkt: *mut PacketInfo,
}

/// The walk of the packet of `hook` (its info in `PCN_PACKETS`) up to its data offset, when
/// its generic header lies inside the IP packet (xt_dccp reads up to `skb->len`, not into a
/// frame's padding).
#[inline(always)]
fn run(
    hook: u32,
    ctx: *mut c_void,
    l4: u32,
    load: Load,
    step: extern "C" fn(u64, *mut c_void) -> i64,
) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(hook) else {
        return 0;
    };
    let end = crate::parse::ETH_HLEN as u32 + unsafe { (*pkt).len };
    let mut header = [0u8; 12];
    let whole = l4 + dccp_option::GENERIC_HEADER <= end
        && load(ctx, l4, header.as_mut_ptr(), dccp_option::GENERIC_HEADER) == 0;
    if !dccp_option::start(unsafe { &mut *pkt }, l4, end, whole.then_some(header)) {
        return 0;
    }
    let mut w = Walking { ctx, pkt };
    unsafe {
        h::bpf_loop(
            dccp_option::MAX_STEPS,
            step as *mut c_void,
            &raw mut w as *mut c_void,
            0,
        );
    }
    0
}

extern "C" fn xdp_step(_: u64, walking: *mut c_void) -> i64 {
    step(walking, xdp_load)
}

extern "C" fn tc_step(_: u64, walking: *mut c_void) -> i64 {
    step(walking, tc_load)
}

/// One option: 0 to go on, 1 once the walk is over.
#[inline(always)]
fn step(walking: *mut c_void, load: Load) -> i64 {
    // SAFETY: `run` passes its context, whose `pkt` is the packet's map value.
    let w = unsafe { &*(walking as *const Walking) };
    let pkt = unsafe { &mut *w.pkt };
    let more = dccp_option::step(pkt, |at, len| {
        let mut option = [0u8; 2];
        // Constant lengths, for the helper's size argument.
        let loaded = match len {
            2 => load(w.ctx, at, option.as_mut_ptr(), 2),
            _ => load(w.ctx, at, option.as_mut_ptr(), 1),
        };
        (loaded == 0).then_some(option)
    });
    (!more) as i64
}
