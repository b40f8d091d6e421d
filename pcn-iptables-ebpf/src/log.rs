//! `-j LOG`: a record of the packet in the pinned ring buffer `PCN_LOG`, which
//! `pcn-iptables --log-follow` prints in netfilter's LOG format. Records that do not fit
//! (buffer full, or more than MAX_LOGS_PER_ROUND LOG rules in one round) are counted in
//! `PCN_LOG_LOST`, never lost silently.
//!
//! The scan only notes which LOG rules matched (`pend`): it runs in a `bpf_loop` callback
//! without the packet's context. The classifier writes the records once the round is over.
//!
//! `--log-uid` (OUTPUT): nf_log prints the fsuid and fsgid of the credentials the socket's
//! file was opened with, for a full socket that has a file. No helper gives the gid (and
//! bpf_get_socket_uid gives `sk_uid`, which a request socket's listener or the kernel's own
//! sockets also have), so the record takes both the way nf_log does: `sk->sk_socket->file->
//! f_cred->fsuid/fsgid`, read with bpf_probe_read_kernel at the offsets userspace found in
//! the kernel's BTF (`Settings`).

use aya_ebpf::{
    EbpfContext,
    helpers::generated as h,
    macros::map,
    maps::{PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::{LOG_PACKET_BYTES, LogRecord, MAX_LOGS_PER_ROUND, PacketInfo};

use crate::maps::action;
use crate::parse::ETH_HLEN;

/// Bytes of the ring buffer (a power of two, a multiple of the page size): about 2,000
/// records between two reads by `--log-follow`; those it has no room for are counted lost.
pub const LOG_RING_BYTES: u32 = 1 << 19;

#[map]
static PCN_LOG: RingBuf = RingBuf::pinned(LOG_RING_BYTES, 0);
#[map]
static PCN_LOG_LOST: PerCpuArray<u64> = PerCpuArray::pinned(1, 0);

#[inline(always)]
fn lost() {
    if let Some(n) = PCN_LOG_LOST.get_ptr_mut(0) {
        unsafe { *n += 1 };
    }
}

/// Notes that LOG rule `action` matched the packet in this round.
#[inline(always)]
pub fn pend(pkt: *mut PacketInfo, action: u32) {
    let pkt = unsafe { &mut *pkt };
    let n = pkt.log_count as usize;
    if n < MAX_LOGS_PER_ROUND {
        pkt.log_actions[n] = action;
        pkt.log_marks[n] = pkt.mark;
        pkt.log_count = n as u32 + 1;
    } else {
        lost();
    }
}

/// What one record needs besides its rule (the `bpf_loop` context of `emit_one`).
#[repr(C)]
struct Emitting {
    /// The program's context (`xdp_md` or `__sk_buff`), for the helper that reads the frame.
    ctx: *mut core::ffi::c_void,
    pkt: *const PacketInfo,
    now: u64,
    caplen: u32,
    count: u32,
    uid: u32,
    gid: u32,
    has_uid: u8,
    has_mac: u8,
    mac: [u8; ETH_HLEN],
}

/// Writes the record of the round's `i`th LOG rule; `load(ctx, offset, buffer, len)` reads the
/// frame.
#[inline(always)]
fn emit_one(
    i: u64,
    e: &Emitting,
    load: impl Fn(*mut core::ffi::c_void, u32, *mut u8, u32) -> i64,
) -> i64 {
    if i >= e.count as u64 || i >= MAX_LOGS_PER_ROUND as u64 {
        return 1;
    }
    let pkt = unsafe { &*e.pkt };
    let Some(action) = action(pkt.slot, pkt.log_actions[i as usize]) else {
        return 0;
    };
    let Some(mut entry) = PCN_LOG.reserve::<LogRecord>(0) else {
        lost();
        return 0;
    };
    let r = entry.as_mut_ptr();
    unsafe {
        (*r).time_ns = e.now;
        (*r).in_ifindex = pkt.in_ifindex;
        (*r).out_ifindex = pkt.out_ifindex;
        (*r).mark = pkt.log_marks[i as usize];
        (*r).ip_len = pkt.len as u16;
        (*r).level = action.log_level;
        (*r).flags = action.log_flags;
        (*r).has_mac = e.has_mac;
        (*r)._pad = 0;
        (*r).mac = e.mac;
        (*r)._pad2 = [0; 2];
        (*r).prefix = action.log_prefix;
        (*r).uid = e.uid;
        (*r).gid = e.gid;
        (*r).has_uid = e.has_uid;
        (*r)._pad3 = [0; 3];
        let mut got = 0;
        let caplen = e.caplen;
        if caplen > 0 {
            // 1..=LOG_PACKET_BYTES in a form the verifier can see.
            let len = ((caplen - 1) & (LOG_PACKET_BYTES as u32 - 1)) + 1;
            let buf = (*r).packet.as_mut_ptr();
            if load(e.ctx, ETH_HLEN as u32, buf, len) == 0 {
                got = len;
            }
        }
        (*r).caplen = got as u16;
    }
    entry.submit(0);
    0
}

extern "C" fn emit_xdp_one(i: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let e = unsafe { &*(ctx as *const Emitting) };
    emit_one(i, e, |ctx, off, buf, len| unsafe {
        h::bpf_xdp_load_bytes(ctx as *mut _, off, buf as *mut _, len)
    })
}

extern "C" fn emit_tc_one(i: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let e = unsafe { &*(ctx as *const Emitting) };
    emit_one(i, e, |ctx, off, buf, len| unsafe {
        h::bpf_skb_load_bytes(ctx as *const _, off, buf as *mut _, len)
    })
}

/// Writes the records of the round's LOG rules, in a loop of its own so that the verifier
/// checks one record's code once, not once per rule and state of the classifier.
#[inline(always)]
fn emit(
    ctx: *mut core::ffi::c_void,
    pkt: &mut PacketInfo,
    frame_len: usize,
    owner: Option<(u32, u32)>,
    mac: Option<[u8; ETH_HLEN]>,
    one: extern "C" fn(u64, *mut core::ffi::c_void) -> i64,
) {
    let mut caplen = frame_len.saturating_sub(ETH_HLEN);
    if caplen > pkt.len as usize {
        caplen = pkt.len as usize;
    }
    if caplen > LOG_PACKET_BYTES {
        caplen = LOG_PACKET_BYTES;
    }
    let mut e = Emitting {
        ctx,
        pkt,
        now: unsafe { h::bpf_ktime_get_ns() },
        caplen: caplen as u32,
        count: pkt.log_count,
        uid: owner.map(|o| o.0).unwrap_or(0),
        gid: owner.map(|o| o.1).unwrap_or(0),
        has_uid: owner.is_some() as u8,
        has_mac: mac.is_some() as u8,
        mac: mac.unwrap_or([0; ETH_HLEN]),
    };
    unsafe {
        h::bpf_loop(
            MAX_LOGS_PER_ROUND as u32,
            one as *mut core::ffi::c_void,
            &mut e as *mut Emitting as *mut core::ffi::c_void,
            0,
        );
    }
    pkt.log_count = 0;
}

/// The records of an XDP round (INPUT, FORWARD: the Ethernet header is shown). A subprogram,
/// so that its stack is not added to the classifier's.
#[inline(never)]
pub fn emit_xdp(ctx: *mut aya_ebpf::bindings::xdp_md, pkt: &mut PacketInfo) {
    let ctx = &XdpContext::new(ctx);
    let (start, end) = (ctx.data(), ctx.data_end());
    let mac = if start + ETH_HLEN <= end {
        Some(unsafe { *(start as *const [u8; ETH_HLEN]) })
    } else {
        None
    };
    emit(ctx.as_ptr(), pkt, end - start, None, mac, emit_xdp_one);
}

/// The records of a TC round (OUTPUT: no input interface, so no MAC, as in the kernel).
#[inline(never)]
pub fn emit_tc(skb: *mut aya_ebpf::bindings::__sk_buff, pkt: &mut PacketInfo) {
    let ctx = &TcContext::new(skb);
    let skb = ctx.skb.skb;
    let len = unsafe { (*skb).len as usize };
    let owner = match crate::owner::of(skb) {
        crate::owner::Owner::File(uid, gid, _) => Some((uid, gid)),
        _ => None,
    };
    emit(ctx.as_ptr(), pkt, len, owner, None, emit_tc_one);
}
