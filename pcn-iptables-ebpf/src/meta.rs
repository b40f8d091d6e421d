//! The metadata in front of a frame XDP passes on, for `pcn_answer` (TC ingress): a tag and
//! two values. A reply built at XDP (`ANSWER`), or a packet that carries what its rules did to
//! it that only an skb can take (`CARRY`: the mark `-j MARK` set, and the MSS `-j TCPMSS`
//! asked for, `tcpmss::spec`). Only an XDP program can give a packet metadata, so nothing from
//! the wire carries it; an skb keeps it through lo and veth, so `take` zeroes the tag.
//!
//! Some kernel builds refuse bpf_xdp_adjust_meta to XDP programs. There the loader sets
//! `PCN_XDP_META` to 0 and attaches XDP in generic mode, which runs on the skb right before
//! its TC ingress on the same CPU: the tag and values wait in a per-CPU slot (`PCN_HANDOFF`)
//! with the frame's length and IP header words, and `take` hands them only to that frame.

use aya_ebpf::{
    EbpfContext as _,
    helpers::generated as h,
    macros::map,
    maps::PerCpuArray,
    programs::{TcContext, XdpContext},
};

/// 1 where XDP programs may call bpf_xdp_adjust_meta (set by the loader).
#[unsafe(no_mangle)]
static PCN_XDP_META: u8 = 0;

/// The tag and values for the frame XDP passed last on this CPU, and what tells that frame.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Handoff {
    found: [u32; 3],
    frame: [u32; 3],
}

/// Shared by XDP's classifier of every generation and the TC ingress entry: pinned.
#[map]
static PCN_HANDOFF: PerCpuArray<Handoff> = PerCpuArray::pinned(1, 0);

/// The frame's length, its IP header's id and fragment word, and its TTL, protocol and
/// checksum: what XDP left in the frame, as TC ingress sees it next.
#[inline(always)]
fn frame(data: usize, data_end: usize) -> [u32; 3] {
    const WORDS: usize = 14 + 12;
    let len = (data_end - data) as u32;
    if data + WORDS > data_end {
        return [len, 0, 0];
    }
    let words = unsafe { &*((data + 18) as *const [u32; 2]) };
    [len, words[0], words[1]]
}

fn adjusts_meta() -> bool {
    unsafe { core::ptr::read_volatile(&PCN_XDP_META) != 0 }
}

pub(crate) const ANSWER: u32 = 0x5043_4e41;
pub(crate) const CARRY: u32 = 0x5043_4e4d;
const META_LEN: usize = 12;

/// Puts `tag` and its values in the frame's metadata; false where the driver keeps none.
#[inline(always)]
pub(crate) fn put(ctx: &XdpContext, tag: u32, value: u32, extra: u32) -> bool {
    if !adjusts_meta() {
        let Some(slot) = PCN_HANDOFF.get_ptr_mut(0) else {
            return false;
        };
        let frame = frame(ctx.data(), ctx.data_end());
        unsafe {
            *slot = Handoff {
                found: [tag, value, extra],
                frame,
            }
        };
        return true;
    }
    if unsafe { h::bpf_xdp_adjust_meta(ctx.as_ptr() as *mut _, -(META_LEN as i32)) } != 0 {
        return false;
    }
    let (meta, data) = (ctx.metadata(), ctx.data());
    if meta + META_LEN > data {
        return false;
    }
    unsafe { *(meta as *mut [u32; 3]) = [tag, value, extra] };
    true
}

/// Gives a frame XDP passes on its mark and MSS request, which `pcn_answer` puts on its skb;
/// false where the driver keeps no metadata.
#[inline(never)]
pub(crate) fn carry(ctx: *mut aya_ebpf::bindings::xdp_md, mark: u32, mss: u32) -> bool {
    put(&XdpContext::new(ctx), CARRY, mark, mss)
}

/// The tag and values of the skb's metadata, used once (the tag is zeroed: the skb keeps
/// its metadata through lo, which brings an answer back in here at once, and veth, to a
/// peer that may run this program too); `None` without ours.
#[inline(always)]
pub(crate) fn take(ctx: &TcContext) -> Option<[u32; 3]> {
    if !adjusts_meta() {
        let slot = unsafe { &mut *PCN_HANDOFF.get_ptr_mut(0)? };
        // Used once, by its frame alone.
        let found = core::mem::replace(&mut slot.found[0], 0);
        if found == 0 || slot.frame != frame(ctx.data(), ctx.data_end()) {
            return None;
        }
        return Some([found, slot.found[1], slot.found[2]]);
    }
    let skb = ctx.skb.skb;
    let (meta, data) = unsafe { ((*skb).data_meta as usize, (*skb).data as usize) };
    if meta + META_LEN > data {
        return None;
    }
    let found = unsafe { *(meta as *const [u32; 3]) };
    if found[0] != ANSWER && found[0] != CARRY {
        return None;
    }
    unsafe { *(meta as *mut u32) = 0 };
    Some(found)
}
