//! The metadata in front of a frame XDP passes on, for `pcn_answer` (TC ingress): a tag and
//! two values. A reply built at XDP (`ANSWER`), or a packet that carries what its rules did to
//! it that only an skb can take (`CARRY`: the mark `-j MARK` set, and the MSS `-j TCPMSS`
//! asked for, `tcpmss::spec`). Only an XDP program can give a packet metadata, so nothing from
//! the wire carries it; an skb keeps it through lo and veth, so `take` zeroes the tag.

use aya_ebpf::{
    EbpfContext as _,
    helpers::generated as h,
    programs::{TcContext, XdpContext},
};

pub(crate) const ANSWER: u32 = 0x5043_4e41;
pub(crate) const CARRY: u32 = 0x5043_4e4d;
const META_LEN: usize = 12;

/// Puts `tag` and its values in the frame's metadata; false where the driver keeps none.
#[inline(always)]
pub(crate) fn put(ctx: &XdpContext, tag: u32, value: u32, extra: u32) -> bool {
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
