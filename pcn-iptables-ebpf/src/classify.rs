//! The classifier's scan: the packet's field values looked up in the generation's trie (one
//! bitmap each, in the field table's order, `pcn_iptables_common::classifier`), then one flat
//! `bpf_loop` over the candidate words of their AND (see the README's "Verifier headroom").

use aya_ebpf::maps::lpm_trie::Key;
use pcn_iptables_common::bitmap::{Block, WORDS_END, block_of, place_of, summary_at, word_at};
use pcn_iptables_common::classifier::{self, ANDED_BITMAPS, SCANNED_BITMAPS, lowest_bit};
use pcn_iptables_common::{FieldKey, MAX_WORDS, PacketInfo, SUMMARY_WORDS, field, verdict};
use pcn_iptables_common::{OFFSET_CHECKED, OFFSET_COUNT_ONLY, OFFSETS};
use pcn_iptables_common::{conntrack, hotdrop, recent};

use crate::maps::{PCN_PACKETS, action, action_mut, bitmaps, chain_config, count, field_lookup};
use crate::{addrtype, limit, log, statistic, time};

/// The bitmap index of field `id`'s entry for `value`, whose first `bits` bits count, in
/// generation `slot`'s trie; the key is built in `scratch` (PacketInfo::lookup_key).
#[inline(always)]
fn lookup(
    scratch: *mut [u8; 16],
    slot: u32,
    id: u8,
    chain: u32,
    bits: u32,
    value: u64,
) -> Option<u32> {
    let key = scratch as *mut Key<FieldKey>;
    let (prefix_len, data) = classifier::lookup_key(id, chain, bits, value);
    unsafe {
        (*key).prefix_len = prefix_len;
        (*key).data = data;
        field_lookup(slot, &*key)
    }
}

/// The state of one scan over a chain's bitmap words (the `bpf_loop` context): written once
/// before the loop and only read in it. What changes from step to step lives in the packet's
/// map memory (`candidates`, `pending`, `found`), whose contents the verifier does not track,
/// so that the loop body verifies once instead of once per state it could carry.
#[repr(C)]
struct Scan {
    /// The block of each bitmap scanned, in `PacketInfo::offsets`' order (which says where in
    /// its block each one lies): the rules of the chain, then one bitmap per field (the
    /// chain's rules again for a field the chain does not use), the two of `-m multiport
    /// --ports` (a rule matches if its bit is set in either), the chain's rules without a
    /// target (counted on the way, not stopped at), and its rules with a check of their own
    /// (see `own_checks`, made in order as the scan reaches them).
    blocks: [*const Block; OFFSETS],
    pkt: *mut PacketInfo,
}

/// `ANY_PORT`, `ANY_PORT + 1`: `Scan::blocks` of `-m multiport --ports`.
const ANY_PORT: usize = ANDED_BITMAPS;

/// Word `i` of scanned bitmap `b`. A mask keeps the read in the block whatever the offsets
/// in map memory say, without a branch for the verifier to follow.
#[inline(always)]
fn word(scan: &Scan, pkt: &PacketInfo, b: usize, i: usize) -> u64 {
    unsafe { (*scan.blocks[b]).words[word_at(pkt.offsets[b] as usize + i)] }
}

/// Summary word `k` of scanned bitmap `b` (the same way).
#[inline(always)]
fn summary(scan: &Scan, pkt: &PacketInfo, b: usize, k: usize) -> u64 {
    unsafe { (*scan.blocks[b]).words[summary_at(pkt.summaries[b] as usize + k)] }
}

/// `summary` where every block holds one bitmap (the 256-word shape of chains over 8,192
/// rules): at a fixed place, without the load and the arithmetic of `summary`, which cost
/// the longest chains 10% of the classifier's time in `candidates` (80 reads). The word
/// reads of the scan stay as they are: a second `visit_word` for this shape would add 28,000
/// verified instructions to each classifier.
#[inline(always)]
fn whole_summary(scan: &Scan, _: &PacketInfo, b: usize, k: usize) -> u64 {
    unsafe { (*scan.blocks[b]).words[WORDS_END + k] }
}

/// Steps of the scan at most: every word, and every rule of a word walked rule by rule.
const SCAN_STEPS: u32 = (MAX_WORDS * 65) as u32;

/// One step of the scan: the next rule of a word being walked rule by rule, or else the next
/// candidate word. Returns 1 to end the loop (a rule decided, or no candidate is left). One
/// flat loop, no loop inside: a nested `bpf_loop` makes the verifier's work depend on how
/// well each kernel build prunes states.
extern "C" fn scan_step(_: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let scan = unsafe { &*(ctx as *const Scan) };
    let pkt = unsafe { &mut *scan.pkt };
    if pkt.pending != 0 {
        visit_rule(scan, pkt)
    } else {
        visit_word(scan, pkt)
    }
}

/// The next rule of `pkt.pending`: a rule whose own check fails does not match; a rule
/// without a target is counted (as netfilter does) and the walk goes on; any other rule
/// decides.
#[inline(always)]
fn visit_rule(scan: &Scan, pkt: &mut PacketInfo) -> i64 {
    let w = pkt.pending;
    pkt.pending = w & (w - 1);
    let i = word_index(pkt.pending_word as usize);
    let bit = lowest_bit(w);
    let mask = 1u64 << (bit & 63);
    let rule = i as u32 * 64 + bit;
    let index = pkt.action_base + rule;
    if word(scan, pkt, OFFSET_CHECKED, i) & mask != 0 {
        match own_checks(pkt, index) {
            Checks::Fail => return 0,
            Checks::Pass => {}
            Checks::Effect => {
                pkt.found = rule;
                return 1;
            }
            Checks::Stop => {
                pkt.found = rule;
                pkt.stop = 1;
                return 1;
            }
        }
    }
    if word(scan, pkt, OFFSET_COUNT_ONLY, i) & mask == 0 {
        pkt.found = rule;
        return 1;
    }
    if let Some(action) = action(pkt.slot, index) {
        // A rule that only counts drops a packet cut short for one of its matches: the
        // round does (`hotdrop::at`).
        if hotdrop::at(pkt, action) {
            pkt.found = rule;
            return 1;
        }
        count(action.counter, pkt.len);
        // Rules that only count are rare: their flows are judged every time.
        pkt.flow_cacheable = 0;
        if action.verdict == verdict::LOG {
            log::pend(pkt, index);
        } else {
            pcn_iptables_common::rewrite(pkt, action);
        }
    }
    0
}

/// What a rule's own checks found.
enum Checks {
    Fail,
    Pass,
    /// All passed, and the rule has a recent list to check or connections to count: the
    /// scan stops there, and the round does it (`chain::round`), outside `bpf_loop`'s
    /// callback, whose frame Linux 6.1 adds to the classifier's.
    Effect,
    /// All passed, and a match of the rule drops the packet, cut short for it
    /// (`hotdrop::stops`): the scan stops there, and the round drops it (`PacketInfo::stop`
    /// tells it, which spares it the test).
    Stop,
}

/// A checked rule's own checks, once its fields matched: its connection's tuples, protocol
/// and direction, the packet's type and TOS byte, then its draw or count, then its bucket
/// (a token is taken only from a rule that matched otherwise); its recent list, connection
/// count or hashlimit bucket comes last (the compiler refuses a match after them), as does
/// `--dccp-option` where the packet's options are cut short (`dccp_option::unwalked`: a
/// branch of its own before the checks cost the classifiers 14,000 verified instructions,
/// this condition 300).
#[inline(always)]
fn own_checks(pkt: &PacketInfo, index: u32) -> Checks {
    let Some(action) = action_mut(pkt.slot, index) else {
        return Checks::Pass;
    };
    if !(conntrack::tuples_match(pkt, unsafe { &*action })
        && pcn_iptables_common::packet_matches(pkt, unsafe { &*action })
        && time::matches(unsafe { &*action })
        && addrtype::matches(pkt, unsafe { &*action })
        && statistic::matches(action)
        && limit::take(action))
    {
        Checks::Fail
    } else if hotdrop::stops(pkt, unsafe { &*action }) {
        Checks::Stop
    } else if unsafe {
        (*action).recent_op != recent::op::NONE
            || (*action).connlimit_flags != 0
            || (*action).hashlimit_table != 0
    } {
        Checks::Effect
    } else {
        Checks::Pass
    }
}

/// A bitmap word's index as the verifier can see it bounded (a power of two of words): LLVM
/// drops a bounds check it can prove, and 6.1 could not.
#[inline(always)]
fn word_index(i: usize) -> usize {
    const _: () = assert!(MAX_WORDS.is_power_of_two());
    core::hint::black_box(i) & (MAX_WORDS - 1)
}

/// The next candidate word: the AND of every bitmap there. Its first rule with a target and
/// no check of its own decides, unless a rule that only counts or has one comes first: then the
/// word's rules up to that one are walked one by one (`pending`). Words some bitmap has empty
/// are never read, so the cost follows the candidates, not the chain's length.
#[inline(always)]
fn visit_word(scan: &Scan, pkt: &mut PacketInfo) -> i64 {
    let mut k = 0;
    while k < SUMMARY_WORDS && pkt.candidates[k] == 0 {
        k += 1;
    }
    if k >= SUMMARY_WORDS {
        return 1;
    }
    let bit = lowest_bit(pkt.candidates[k]);
    pkt.candidates[k] &= pkt.candidates[k] - 1;
    let i = word_index(k * 64 + bit as usize);
    let mut w = word(scan, pkt, ANY_PORT, i) | word(scan, pkt, ANY_PORT + 1, i);
    for b in 0..ANDED_BITMAPS {
        w &= word(scan, pkt, b, i);
    }
    if i as u64 == pkt.start_word {
        w &= pkt.start_mask;
    }
    let special = word(scan, pkt, OFFSET_COUNT_ONLY, i) | word(scan, pkt, OFFSET_CHECKED, i);
    let plain = w & !special;
    let first = plain & plain.wrapping_neg();
    let walk = if first != 0 {
        w & (first | (first - 1))
    } else {
        w
    };
    if walk & special != 0 {
        pkt.pending = walk;
        pkt.pending_word = i as u32;
        return 0;
    }
    if first != 0 {
        pkt.found = i as u32 * 64 + lowest_bit(first);
        return 1;
    }
    0
}

/// `first_match` for the packet of `hook` (`XDP` or `TC`), `u32::MAX` when no rule matches. A
/// global function: the verifier checks it once, on its own, instead of once for every path
/// of the classifier that reaches it. It takes the hook, not the packet: a pointer argument
/// would be plain memory to the verifier, which 6.1 does not take as a map key.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_first_match(hook: u32) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(hook) else {
        return u32::MAX;
    };
    first_match(unsafe { &mut *pkt }).unwrap_or(u32::MAX)
}

/// Index of the first rule with a target at or after `pkt.next_rule` whose every field
/// matches: the AND of the field bitmaps, lowest set bit; matching rules without a target
/// before it are counted. A field without an entry for the packet matches no rule.
///
/// The word loop runs in `bpf_loop`, whose body the verifier checks once, however many words.
/// The summaries (one bit per non-empty word) tell which words are worth reading at all.
#[inline(always)]
fn first_match(pkt: &mut PacketInfo) -> Option<u32> {
    let chain = pkt.chain;
    let cfg = chain_config(pkt.slot, chain)?;
    // Indexes first, into map memory, then pointers: choosing between pointers, or stack
    // contents that differ between paths, would make the verifier follow every combination
    // of fields in use.
    let all = cfg.rules;
    let slot = pkt.slot;
    // Read again for every field, from map memory: a value kept in a register would carry
    // what each branch taught the verifier about its bits, and no two paths would merge.
    pkt.used_fields = cfg.fields;
    let used = &pkt.used_fields as *const u32;
    let scratch = &mut pkt.lookup_key as *mut [u8; 16];
    let index = |id: u8, bits: u32, value: u64| -> Option<u32> {
        if unsafe { core::ptr::read_volatile(used) } & field::bit(id) == 0 {
            Some(all)
        } else {
            lookup(scratch, slot, id, chain, bits, value)
        }
    };
    // Each value is made right where it is looked up, so that few stay live (and spilled);
    // the field table says where its bitmap goes.
    macro_rules! scan {
        ($($id:expr),* $(,)?) => {
            // Every field of the table, each once.
            const _: () = assert!(
                0 $(| field::bit($id))* == classifier::ALL_SCANNED
                    && [$($id),*].len() == classifier::SCANNED.len()
            );
            $(
                let (bits, value) = classifier::packet_value($id, pkt);
                pkt.bitmaps[const { classifier::position($id) }] = index($id, bits, value)?;
            )*
        };
    }
    pkt.bitmaps[0] = all;
    scan!(
        field::SRC,
        field::DST,
        field::PROTO,
        field::SPORT,
        field::DPORT,
        field::IN_IFACE,
        field::OUT_IFACE,
        field::CTSTATE,
        field::ICMP,
        field::TCP_FLAGS,
        field::LENGTH,
        field::TTL,
        field::FRAGMENT,
        field::MAC_SRC,
        field::SRC_TYPE,
        field::DST_TYPE,
        field::ANY_PORT_SRC,
        field::ANY_PORT_DST,
    );

    // Pointers: one lookup of the generation's bitmap array, then one per bitmap that is not
    // the chain's rules (fields a chain does not use cost nothing here); where each bitmap
    // lies in its block goes to map memory.
    let maps = bitmaps(slot)?;
    let all_ptr = maps.get_ptr(block_of(all))?;
    let (words, summary_words) = (cfg.bitmap_words, cfg.bitmap_words.div_ceil(64));
    let summaries_start = cfg.bitmap_summaries;
    pkt.summary_words = summary_words;
    let b = &pkt.bitmaps as *const u32;
    let offsets = &mut pkt.offsets as *mut u32;
    let summaries = &mut pkt.summaries as *mut u32;
    let block = |i: usize, address: u32| -> Option<*const Block> {
        let place = place_of(address);
        unsafe {
            core::ptr::write_volatile(offsets.add(i), place * words);
            if i < SCANNED_BITMAPS {
                core::ptr::write_volatile(
                    summaries.add(i),
                    summaries_start + place * summary_words,
                );
            }
        }
        if address == all {
            Some(all_ptr)
        } else {
            maps.get_ptr(block_of(address))
        }
    };
    // Filled in place: building the array first would take its room on the stack twice.
    let mut scan = Scan {
        blocks: [all_ptr; OFFSETS],
        pkt: core::ptr::null_mut(),
    };
    // Volatile: straight into the struct, not through a copy of each pointer of its own.
    let put = |at: &mut *const Block, p: *const Block| unsafe { core::ptr::write_volatile(at, p) };
    for i in 0..SCANNED_BITMAPS {
        let address = unsafe { core::ptr::read_volatile(b.add(i)) };
        put(&mut scan.blocks[i], block(i, address)?);
    }
    let count_only = block(OFFSET_COUNT_ONLY, cfg.count_only)?;
    put(&mut scan.blocks[OFFSET_COUNT_ONLY], count_only);
    // Equal bitmaps share an index: in a chain with neither checked nor count-only rules both
    // are the empty one, and a helper call is saved.
    let checked = if cfg.checked == cfg.count_only {
        let offset = place_of(cfg.checked) * words;
        unsafe { core::ptr::write_volatile(offsets.add(OFFSET_CHECKED), offset) };
        count_only
    } else {
        block(OFFSET_CHECKED, cfg.checked)?
    };
    put(&mut scan.blocks[OFFSET_CHECKED], checked);
    pkt.action_base = cfg.action_base;
    pkt.start_word = (pkt.next_rule / 64) as u64;
    pkt.start_mask = u64::MAX << (pkt.next_rule % 64);
    if words as usize == WORDS_END {
        candidates(&scan, pkt, whole_summary);
    } else {
        candidates(&scan, pkt, summary);
    }
    pkt.found = u32::MAX;
    pkt.stop = 0;
    pkt.pending = 0;
    scan.pkt = pkt;
    unsafe {
        aya_ebpf::helpers::generated::bpf_loop(
            SCAN_STEPS,
            scan_step as *mut core::ffi::c_void,
            &mut scan as *mut Scan as *mut core::ffi::c_void,
            0,
        );
    }
    let found = unsafe { core::ptr::read_volatile(&pkt.found) };
    (found != u32::MAX).then_some(found)
}

/// The words worth a visit: those every bitmap's summary has non-empty, from the one of
/// `pkt.next_rule` on (the words before it are done with).
#[inline(always)]
fn candidates(
    scan: &Scan,
    pkt: &mut PacketInfo,
    summary: impl Fn(&Scan, &PacketInfo, usize, usize) -> u64,
) {
    let start_word = (pkt.next_rule / 64) as usize;
    for k in 0..SUMMARY_WORDS {
        let first = k * 64;
        // A chain's bitmaps up to 4,096 rules have fewer summary words: none to read.
        if k >= pkt.summary_words as usize || start_word >= first + 64 {
            pkt.candidates[k] = 0;
            continue;
        }
        let mut c = summary(scan, pkt, ANY_PORT, k) | summary(scan, pkt, ANY_PORT + 1, k);
        for b in 0..ANDED_BITMAPS {
            c &= summary(scan, pkt, b, k);
        }
        if start_word > first {
            c &= u64::MAX << (start_word - first);
        }
        pkt.candidates[k] = c;
    }
}

/// `len` if `min <= len <= max`, for a helper's length argument. The value returned is
/// bounded again on a copy the compiler knows nothing about, by a mask and two clamps on the
/// very register the helper gets: LLVM drops checks it can prove from earlier ones or turns
/// them into arithmetic on another register (`len - 1 < 64`), whose bounds older verifiers
/// (6.1) do not carry back to `len`.
#[inline(always)]
pub(crate) fn within(len: usize, min: usize, max: usize) -> Option<u32> {
    if len < min || len > max {
        return None;
    }
    let v = core::hint::black_box(len) & (max.next_power_of_two() * 2 - 1);
    let v = if v < min { min } else { v };
    Some(if v > max { max } else { v } as u32)
}
