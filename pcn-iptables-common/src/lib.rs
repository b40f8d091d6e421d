//! `#[repr(C)]` types and constants shared by the pcn-iptables userspace and its eBPF programs.
#![no_std]

pub mod addrtype;
pub mod bitmap;
pub mod checksum;
pub mod classifier;
pub mod connlimit;
pub mod conntrack;
pub mod dccp_option;
pub mod hashlimit;
pub mod hotdrop;
pub mod icmp_limit;
pub mod limit;
pub mod recent;
pub mod sctp_chunks;
pub mod statistic;
pub mod tcp_option;
pub mod tcpmss;
#[cfg(test)]
mod test_rng;
pub mod time;

pub use bitmap::{BLOCK_WORDS, Block, Shape};
pub use classifier::{
    FIELD_KEY_HEADER_BITS, FieldKey, SCANNED_BITMAPS, field, field_key, field_key6,
};

/// Connections the conntrack table holds unless userspace says otherwise (it does: see
/// `dataplane::sizes`).
pub const CONNTRACK_ENTRIES: u32 = 262_144;

/// Rules one chain can hold: the classifier's bitmaps have one bit per rule.
pub const MAX_RULES_PER_CHAIN: usize = 16384;
/// 64-bit words in a rule bitmap.
pub const MAX_WORDS: usize = MAX_RULES_PER_CHAIN / 64;
/// Counter slots (rules of every chain plus the base chains' policies).
pub const MAX_COUNTERS: u32 = 65536;
/// Counter slots per page: the data plane counts into per-CPU arrays of this many slots,
/// made as the rules need them (slot `s` is index `s % COUNTER_PAGE` of page `s / COUNTER_PAGE`).
pub const COUNTER_PAGE: u32 = 1024;
pub const COUNTER_PAGES: u32 = MAX_COUNTERS / COUNTER_PAGE;
/// Chains (base and user-defined, every table) the data plane can evaluate: a chain id is
/// 16 bits of a field key. Each generation's chain array is sized to its chains.
pub const MAX_CHAINS: u32 = 65536;
/// Nested `-j` calls to user chains a packet may be inside at once.
pub const MAX_CALL_DEPTH: usize = 16;

/// Chain ids of the filter table's base chains; user chains follow.
pub const CHAIN_INPUT: u32 = 0;
pub const CHAIN_FORWARD: u32 = 1;
pub const CHAIN_OUTPUT: u32 = 2;
/// Chain ids of the nat table's base chains (always reserved).
pub const CHAIN_NAT_PREROUTING: u32 = 3;
pub const CHAIN_NAT_INPUT: u32 = 4;
pub const CHAIN_NAT_OUTPUT: u32 = 5;
pub const CHAIN_NAT_POSTROUTING: u32 = 6;
/// Chain ids of the mangle table's base chains (always reserved).
pub const CHAIN_MANGLE_PREROUTING: u32 = 7;
pub const CHAIN_MANGLE_INPUT: u32 = 8;
pub const CHAIN_MANGLE_FORWARD: u32 = 9;
pub const CHAIN_MANGLE_OUTPUT: u32 = 10;
pub const CHAIN_MANGLE_POSTROUTING: u32 = 11;
/// Chain ids of the raw table's base chains (always reserved).
pub const CHAIN_RAW_PREROUTING: u32 = 12;
pub const CHAIN_RAW_OUTPUT: u32 = 13;
/// Chains with a fixed id: user chains (of any table) follow.
pub const FIXED_CHAINS: u32 = 14;
/// No chain: the packet is not filtered (e.g. a forwarded packet seen again on egress).
pub const CHAIN_NONE: u32 = u32::MAX;

/// Slots of the pinned program arrays: one classifier per generation, two generations.
pub const GENERATIONS: u32 = 2;

/// Bytes per entry of the map that stores a generation's ruleset text.
pub const STATE_CHUNK: usize = 4096;

/// Words of a bitmap's summary.
pub const SUMMARY_WORDS: usize = MAX_WORDS / 64;

/// What a matching rule (or a chain's policy) does with the packet.
pub mod verdict {
    pub const ACCEPT: u32 = 1;
    pub const DROP: u32 = 2;
    /// Back to the calling chain (in a base chain: the policy).
    pub const RETURN: u32 = 3;
    /// `-j CHAIN`: evaluate CHAIN, come back after this rule on RETURN.
    pub const JUMP: u32 = 4;
    /// `-g CHAIN`: evaluate CHAIN, do not come back here.
    pub const GOTO: u32 = 5;
    /// No target: count and go on with the next rule (the classifier's scan does both).
    pub const CONTINUE: u32 = 6;
    /// `-j REJECT`: answer with `Action::reject_with`, drop the packet.
    pub const REJECT: u32 = 7;
    /// `-j LOG`: log the packet and go on with the next rule, like CONTINUE.
    pub const LOG: u32 = 8;
    /// A nat target (`Action::nat_kind`): the connection's mapping is chosen, and the chain
    /// is done with, as with ACCEPT.
    pub const NAT: u32 = 9;
    /// `-j MARK`: the packet's mark becomes `(mark & !Action::set_mark_mask) ^
    /// Action::set_mark`, and the chain goes on, like CONTINUE.
    pub const MARK: u32 = 10;
    /// `-j CONNMARK`: the connection's mark or the packet's changes
    /// (`conntrack::connmark`), and the chain goes on.
    pub const CONNMARK: u32 = 11;
    /// `-j TOS`, `-j DSCP`: the TOS byte becomes `(tos & !Action::set_mark_mask) ^
    /// Action::set_mark` (`rewrite`), and the chain goes on.
    pub const TOS: u32 = 12;
    /// `-j TTL`: the TTL is set, raised or lowered (`rewrite::ttl`), and the chain goes on.
    pub const TTL: u32 = 13;
    /// `-j TCPMSS`: a SYN's MSS option is lowered to `Action::set_mark` (or to the path's
    /// MTU less 40: `rewrite::CLAMP_PMTU`), and the chain goes on.
    pub const TCPMSS: u32 = 14;
    /// `-j NOTRACK`, `-j CT --notrack` (raw only): the packet is not tracked
    /// (`PacketInfo::untracked`), and the chain goes on.
    pub const NOTRACK: u32 = 15;
}

/// `Action::nat_kind`: which nat target a rule has.
pub mod nat_kind {
    pub const SNAT: u8 = 1;
    pub const DNAT: u8 = 2;
    pub const MASQUERADE: u8 = 3;
    pub const REDIRECT: u8 = 4;
    pub const NETMAP: u8 = 5;
}

/// `Action::nat_flags`: the kernel's `NF_NAT_RANGE_*` bits.
pub mod nat_range {
    pub const MAP_IPS: u32 = 1;
    pub const PROTO_SPECIFIED: u32 = 2;
    pub const PROTO_RANDOM: u32 = 4;
    pub const PERSISTENT: u32 = 8;
    pub const PROTO_RANDOM_FULLY: u32 = 16;
}

/// `Action::reject_with`: an ICMP error as `type << 8 | code`, or a TCP reset.
pub mod reject {
    pub const TCP_RESET: u32 = 0xffff_ffff;
    pub const fn icmp(kind: u8, code: u8) -> u32 {
        (kind as u32) << 8 | code as u32
    }
}

/// Route types of an address (the kernel's `RTN_*`, which `-m addrtype` matches).
pub mod rtn {
    pub const UNSPEC: u8 = 0;
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const ANYCAST: u8 = 4;
    pub const MULTICAST: u8 = 5;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
    pub const THROW: u8 = 9;
    pub const NAT: u8 = 10;
    pub const XRESOLVE: u8 = 11;
}

/// `Action::log_flags` (`--log-tcp-sequence` and friends).
pub mod log_flag {
    pub const TCP_SEQUENCE: u8 = 1;
    pub const TCP_OPTIONS: u8 = 2;
    pub const IP_OPTIONS: u8 = 4;
    pub const UID: u8 = 8;
}

/// Bytes of `Action::log_prefix` (iptables takes at most 29 characters).
pub const LOG_PREFIX_LEN: usize = 32;

/// Per chain, per generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainConfig {
    /// Words of the chain's bitmaps in use (rules / 64, rounded up).
    pub nwords: u32,
    /// `field::*` bits: the lookups this chain needs.
    pub fields: u32,
    /// Index of the chain's first rule in the action array.
    pub action_base: u32,
    /// `verdict::ACCEPT`/`DROP` for base chains, `verdict::RETURN` for user chains.
    pub policy: u32,
    /// Counter slot of the policy.
    pub policy_counter: u32,
    /// The chain's own bitmaps (by index in the compiler's program; by address,
    /// `bitmap::Shape::address`, in the map, as the trie's values): the bitmap of the rules
    /// with a check of their own (`-m limit`'s bucket, `-m conntrack`'s tuples, `-m
    /// statistic`, `-m pkttype`, the TOS byte: see `Action`), made one at a time in order as
    /// the scan reaches them.
    pub checked: u32,
    /// The bitmap of every rule of the chain, and the one of its rules without a target
    /// (which only count): found without a trie lookup.
    pub rules: u32,
    pub count_only: u32,
    /// `chain_flag::*`
    pub flags: u32,
    /// The generation's `bitmap::Shape` (the same in every chain): its words, and where a
    /// block's summaries start (`Shape::summaries`).
    pub bitmap_words: u32,
    pub bitmap_summaries: u32,
    pub _pad: u32,
    /// Different in every generation: a flow's cached verdict is good only in the generation
    /// (`epoch`) that found it.
    pub epoch: u64,
}

pub mod chain_flag {
    /// The chain's outcome for a packet is a function of its `FlowKey` alone (no per-packet
    /// field, no LOG, no limit): packets of a flow that met only such chains share a verdict.
    pub const CACHEABLE: u32 = 1;
    /// Connections are tracked: some rule of the generation looks at their state (set on
    /// every chain). As with netfilter, whose conntrack hooks a namespace only while a rule
    /// needs them, nothing is tracked otherwise: a connection made meanwhile is picked up
    /// from its next packet, as NEW.
    pub const TRACK: u32 = 2;
    /// The nat table is loaded (set on every chain): new connections go through its chains
    /// and translated ones are rewritten. Connections are tracked (TRACK) then too.
    pub const NAT: u32 = 4;
    /// Some rule has `-m owner` (set on every chain): OUTPUT finds each packet's socket
    /// owner (`PacketInfo::owner`).
    pub const OWNER: u32 = 8;
    /// The mangle table is loaded (set on every chain): packets pass its base chains, which
    /// count them by their policies, and run those with RUN.
    pub const MANGLE: u32 = 16;
    /// The chain has rules or a DROP policy: a packet passing it must be classified there.
    pub const RUN: u32 = 32;
    /// Some rule has `-m tcpmss` (set on every chain): the parse reads TCP packets' MSS option.
    pub const TCPMSS: u32 = 64;
    /// The raw table is loaded (set on every chain): packets pass its base chains before
    /// their connection is looked up, which count them by their policies, and run those
    /// with RUN.
    pub const RAW: u32 = 128;
    /// Some rule has `-m tcp --tcp-option` (set on every chain): the parse walks TCP
    /// packets' options (`PacketInfo::tcp_kinds`).
    pub const TCP_OPTION: u32 = 256;
    /// Some rule has `-m sctp --chunk-types` (set on every chain): the parse walks SCTP
    /// packets' chunks (`PacketInfo::sctp_types`, `sctp_flags`).
    pub const SCTP_CHUNKS: u32 = 512;
    /// Some rule has `-m dccp --dccp-option` (set on every chain): the parse walks DCCP
    /// packets' options (`PacketInfo::dccp_types`).
    pub const DCCP_OPTION: u32 = 1024;
}

/// Flows whose verdict the entry programs remember (`PCN_FLOWS`, an LRU map).
pub const FLOW_CACHE_ENTRIES: u32 = 131_072;
/// Counters a cached verdict bumps at most (the rules a packet met on its way, the policy);
/// a longer way is not cached.
pub const FLOW_COUNTERS: usize = 6;

/// What a cacheable chain's outcome depends on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// Ports, or ICMP type and code.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub ctstate: u8,
    /// The base chain.
    pub chain: u8,
    /// `flow_flag::*`
    pub flags: u8,
    pub in_ifindex: u32,
    pub out_ifindex: u32,
}

pub mod flow_flag {
    pub const PORTS: u8 = 1;
    pub const ICMP: u8 = 2;
    pub const FRAGMENT: u8 = 4;
}

/// A flow's verdict in generation `epoch`, and the counters it bumped on its way there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowVerdict {
    pub epoch: u64,
    /// `verdict::ACCEPT` or `verdict::DROP`.
    pub verdict: u32,
    pub ncounters: u32,
    pub counters: [u32; FLOW_COUNTERS],
}

/// Per rule, per generation.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Action {
    /// `verdict::*`
    pub verdict: u32,
    /// Target chain id for JUMP/GOTO.
    pub chain: u32,
    /// Counter slot of the rule.
    pub counter: u32,
    /// REJECT: `reject::*`.
    pub reject_with: u32,
    /// LOG: `--log-level` (syslog's 0..7), `log_flag::*`, `--log-prefix` (NUL-padded).
    pub log_level: u8,
    pub log_flags: u8,
    /// NAT: `nat_kind::*`, and its range: `nat_range::*` flags, addresses (network byte
    /// order bytes) and ports, inclusive.
    pub nat_kind: u8,
    /// `-s`/`-d` with a mask that is not a prefix (`pkt_check::ADDR_*`), each checked by the
    /// rule itself against `addr_masked`.
    pub addr_check: u8,
    pub nat_flags: u32,
    pub nat_addr: [[u8; 4]; 2],
    pub nat_port: [u16; 2],
    /// `-m limit`: burst (packets), 0 when the rule has no limit.
    pub limit_burst: u32,
    pub log_prefix: [u8; LOG_PREFIX_LEN],
    /// `-m limit`: nanoseconds per packet at the average rate.
    pub limit_interval_ns: u64,
    /// `-m limit`'s token bucket, kept by the data plane: credit in nanoseconds (starts at
    /// burst × interval, full) and the time of the last packet that was checked.
    pub limit_credit_ns: u64,
    pub limit_last_ns: u64,
    /// `-m conntrack --ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst`: the
    /// `ct_check` bits of those the rule has, of those negated (`ct_invert`), and each one's
    /// address and mask in that order (network byte order bytes), which the packet's
    /// connection's tuples are checked against.
    pub ct_checks: u8,
    pub ct_invert: u8,
    /// `-m statistic`: `statistic::*` mode, and `!`.
    pub stat_mode: u8,
    pub stat_invert: u8,
    /// `-m conntrack --ctproto` and `--ctdir`: the `ct_other` bits of those the rule has,
    /// and the protocol.
    pub ct_other: u8,
    pub ct_proto: u8,
    /// `-m pkttype`, `-m tos`, `-m dscp`, `-m ecn --ecn-ip-ect`: `pkt_check::*` bits, and
    /// the type.
    pub pkt_check: u8,
    pub pkt_type: u8,
    pub ct_addr: [[u8; 4]; 4],
    pub ct_mask: [[u8; 4]; 4],
    /// `--probability` out of 2^31 (random), or `--every` (nth).
    pub stat_value: u32,
    /// `--packet` (nth).
    pub stat_packet: u32,
    /// The TOS bytes the rule lets through, one bit each (byte `t / 8`, bit `t % 8`).
    pub tos_set: [u8; 32],
    /// Packets that reached the rule's `--mode nth` since the generation started, kept by
    /// the data plane.
    pub stat_seen: u64,
    /// `-m recent`: `recent::op` (NONE: the rule has none), `recent::flag` bits, and the
    /// list's slot in the data plane's `RECENT`.
    pub recent_op: u8,
    pub recent_flags: u8,
    pub recent_list: u16,
    /// The list's mask (network byte order bytes): that of the rule that made the list, as
    /// xt_recent keeps it.
    pub recent_mask: [u8; 4],
    /// The list's stamps less one, and `--hitcount`.
    pub recent_stamp_mask: u16,
    pub recent_hitcount: u16,
    /// `--seconds`
    pub recent_seconds: u32,
    /// `-m mark --mark`: the packet's mark under `mark_mask` is `mark` (`pkt_check::MARK`).
    pub mark: u32,
    pub mark_mask: u32,
    /// `-j MARK`: xt_MARK's value and mask (see `verdict::MARK`); `-j CONNMARK`: its ctmark
    /// and ctmask.
    pub set_mark: u32,
    pub set_mark_mask: u32,
    /// `-m connmark --mark`: the connection's mark under `connmark_mask` is `connmark`
    /// (`pkt_check::CONNMARK`).
    pub connmark: u32,
    pub connmark_mask: u32,
    /// `-j CONNMARK`: `conntrack::connmark_mode`, the shift, and the nfmask.
    pub connmark_mode: u8,
    pub connmark_shift: u8,
    /// `-m owner`: `owner::*` bits the rule has, those negated, and the ranges.
    pub owner_match: u8,
    pub owner_invert: u8,
    pub nfmask: u32,
    pub owner_uid: [u32; 2],
    pub owner_gid: [u32; 2],
    /// `-m conntrack --ctexpire` (seconds, inclusive) and `--ctstatus` (`conntrack::ips`
    /// bits).
    pub ct_expires: [u32; 2],
    pub ct_status_mask: u8,
    /// `-m connlimit`: `connlimit::flag` bits, the limit and the mask (network byte order
    /// bytes).
    pub connlimit_flags: u8,
    /// `-m time`: `time::flag` bits and the weekdays (bits 1..=7, Monday first).
    pub time_flags: u8,
    pub time_weekdays: u8,
    /// `-m tcpmss`: `tcpmss::flag` bits, and the range (`tcpmss_range`).
    pub tcpmss_flags: u8,
    /// `-m esp`, `-m ah`: `pkt_check::SPI` and `SPI_INVERT`, and the SPI range.
    pub spi_flags: u8,
    /// `-m hashlimit`: the rule's own `hashlimit::mode` bits (INVERT, BYTES, RATE_MATCH;
    /// the table's keys and arithmetic are the table's).
    pub hashlimit_mode: u8,
    /// `-m conntrack --ctorigsrcport` … `--ctrepldstport`: the `ct_port` bits of those the
    /// rule has and of those negated (`Action::ct_port_range`).
    pub ct_ports: u8,
    pub connlimit_limit: u32,
    pub connlimit_mask: [u8; 4],
    /// `-m time`: the dates (UTC seconds, inclusive), the daytimes (seconds of the day) and
    /// the days of the month (bits 1..=31) it matches.
    pub time_date: [u32; 2],
    pub time_daytime: [u32; 2],
    pub time_monthdays: u32,
    pub tcpmss_range: [u16; 2],
    pub spi_range: [u32; 2],
    /// `-m hashlimit`: the table's slot plus one (0: the rule has none).
    pub hashlimit_table: u16,
    /// `-m sctp` or `-m dccp`: `pkt_check::PORTS_*` bits, the protocol, DCCP's types (bit
    /// `1 << type`), and the source and destination port ranges.
    pub ports_flags: u8,
    pub ports_proto: u8,
    pub dccp_types: u16,
    pub ports_range: [[u16; 2]; 2],
    /// The ranges of `ct_ports`, in its order (low, high).
    pub ct_port_range: [[u16; 2]; 4],
    /// The source's and the destination's address and mask (network byte order bytes), for
    /// `addr_check`.
    pub addr_masked: [[[u8; 4]; 2]; 2],
    /// `-m tcp --tcp-option`: the option kind, `tcp_option::flag` bits.
    pub tcp_option: u8,
    pub tcp_option_flags: u8,
    /// `-m sctp --chunk-types` (`sctp_chunks::fill`): `sctp_chunks::flag` bits; the flag
    /// checks (`sctp_checks` of `sctp_chunks::MAX_CHECKS`, the others on
    /// `sctp_chunks::UNUSED_TYPE`), each a chunk type and the flag values that count; the
    /// chunk types that count (bit `t % 64` of word `t / 64`).
    pub sctp_chunk_flags: u8,
    pub sctp_checks: u8,
    /// `-m owner --suppl-groups`: the index of the rule's GID range in its generation's
    /// `owner::GroupRanges` (in what was padding).
    pub owner_group: u8,
    pub _sctp_pad: u8,
    pub sctp_check_set: [u32; sctp_chunks::MAX_CHECKS],
    pub sctp_check_types: [u8; sctp_chunks::MAX_CHECKS],
    pub sctp_types: [u64; 4],
    /// `-m addrtype --limit-iface-in/out` (`addrtype::matches`): `addrtype::flag` bits, and
    /// the `--src-type` and `--dst-type` sets (`1 << rtn::*` bits; 0: none).
    pub addrtype_flags: u8,
    /// The `hotdrop` bits of the matches the rule holds that drop a packet cut short for
    /// them (in what was padding).
    pub hotdrop: u8,
    pub addrtype_types: [u16; 2],
    /// `-m dccp --dccp-option`: the option type, `dccp_option::flag` bits.
    pub dccp_option: u8,
    pub dccp_option_flags: u8,
}

/// `-m owner` (xt_owner): `Action::owner_match` bits, and `PacketInfo::owner` states.
pub mod owner {
    pub const UID: u8 = 1;
    pub const GID: u8 = 2;
    pub const SOCKET: u8 = 4;
    /// `--suppl-groups`: GID also matches where a supplementary group of the file's
    /// credentials lies in the range.
    pub const SUPPL_GROUPS: u8 = 8;
    /// The packet has no full socket with a `struct socket`.
    pub const NO_SOCKET: u8 = 0;
    /// A socket without a file.
    pub const NO_FILE: u8 = 1;
    /// A socket whose file's fsuid and fsgid are `PacketInfo::owner_uid`, `owner_gid`.
    pub const FILE: u8 = 2;

    /// xt_owner's `owner_mt` for packet `pkt` (its socket's state, fsuid and fsgid, and
    /// `owner_groups`: which of the generation's `--suppl-groups` ranges hold one of its
    /// supplementary groups, found once per packet at egress, so that a rule's check is
    /// one bit).
    #[inline(always)]
    pub fn matches(pkt: &crate::PacketInfo, a: &crate::Action) -> bool {
        let (state, uid, gid) = (pkt.owner, pkt.owner_uid, pkt.owner_gid);
        let (m, inv) = (a.owner_match, a.owner_invert);
        let within = |v: u32, r: [u32; 2]| r[0] <= v && v <= r[1];
        let group = || {
            within(gid, a.owner_gid)
                || (m & SUPPL_GROUPS != 0 && pkt.owner_groups >> (a.owner_group & 63) & 1 != 0)
        };
        match state {
            NO_SOCKET => m ^ inv == 0,
            _ if m & inv & SOCKET != 0 => false,
            NO_FILE => (m ^ inv) & (UID | GID) == 0,
            _ => {
                (m & UID == 0 || within(uid, a.owner_uid) != (inv & UID != 0))
                    && (m & GID == 0 || group() != (inv & GID != 0))
            }
        }
    }

    /// Distinct GID ranges the `--suppl-groups` rules of one generation may have: the bits
    /// of `PacketInfo::owner_groups` (`Action::owner_group` indexes them).
    pub const GROUP_RANGES: usize = 64;

    /// The most supplementary groups a credential has (NGROUPS_MAX).
    pub const NGROUPS_MAX: u32 = 65536;

    /// A generation's `--suppl-groups` GID ranges (the pinned `PCN_OWNER_GROUPS`, one per
    /// generation slot, written before the generation goes live): `n` of them, inclusive.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct GroupRanges {
        pub n: u32,
        pub _pad: u32,
        pub ranges: [[u32; 2]; GROUP_RANGES],
    }

    impl Default for GroupRanges {
        fn default() -> Self {
            GroupRanges {
                n: 0,
                _pad: 0,
                ranges: [[0; 2]; GROUP_RANGES],
            }
        }
    }

    /// The egress walk of a file's supplementary groups against a generation's ranges: step
    /// `i` of `groups × n` tests group `i / n` against range `i % n`. A flat loop, so that
    /// the `bpf_loop` callback that runs it has no loop of its own, and the step found from
    /// the loop's index, so that the verifier carries no counter from one step to the next.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct GroupWalk {
        /// The GID of the group being tested (read at its first range).
        pub gid: u32,
        pub _pad: u32,
        /// Bit `k`: a group lies in range `k` (`PacketInfo::owner_groups`).
        pub found: u64,
    }

    impl GroupWalk {
        /// Step `i`; `read(g)` reads group `g` (`None`: it cannot be). `false`: stop (each
        /// range holds a group, or a group cannot be read).
        #[inline(always)]
        pub fn step(
            &mut self,
            i: u32,
            ranges: &GroupRanges,
            read: impl FnOnce(u32) -> Option<u32>,
        ) -> bool {
            let n = ranges.n;
            let (Some(group), Some(k)) = (i.checked_div(n), i.checked_rem(n)) else {
                return false;
            };
            if k == 0 {
                match read(group) {
                    Some(g) => self.gid = g,
                    None => return false,
                }
            }
            // Masked, not checked: LLVM drops a check it proves on one path (k = 0), where
            // the verifier cannot prove it. `n` is at most `GROUP_RANGES`.
            let k = k as usize % GROUP_RANGES;
            let [lo, hi] = ranges.ranges[k];
            if lo <= self.gid && self.gid <= hi {
                self.found |= 1 << k;
            }
            self.found != u64::MAX >> (64 - n.min(GROUP_RANGES as u32))
        }
    }
}

/// `Action::ct_other`.
pub mod ct_other {
    /// `--ctproto`, and its `!`.
    pub const PROTO: u8 = 1;
    pub const PROTO_INVERT: u8 = 2;
    /// `--ctdir`, and whether it is REPLY.
    pub const DIR: u8 = 4;
    pub const REPLY: u8 = 8;
    /// `--ctstatus` (`Action::ct_status_mask`), and its `!`.
    pub const STATUS: u8 = 16;
    pub const STATUS_INVERT: u8 = 32;
    /// `--ctexpire` (`Action::ct_expires`), and its `!`.
    pub const EXPIRES: u8 = 64;
    pub const EXPIRES_INVERT: u8 = 128;
}

/// `Action::ct_ports`: one bit per tuple port (original source, original destination, reply
/// source, reply destination), and the same shifted by 4 for its `!`.
pub mod ct_port {
    pub const ORIG_SRC: u8 = 1;
    pub const ORIG_DST: u8 = 2;
    pub const REPL_SRC: u8 = 4;
    pub const REPL_DST: u8 = 8;
    pub const INVERT_SHIFT: u8 = 4;
}

/// `Action::pkt_check`.
pub mod pkt_check {
    /// The rule has `-m pkttype`, and its `!`.
    pub const TYPE: u8 = 1;
    pub const INVERT: u8 = 2;
    /// The rule looks at the TOS byte (`Action::tos_set`).
    pub const TOS: u8 = 4;
    /// `-m mark` (`Action::mark`), and its `!`.
    pub const MARK: u8 = 8;
    pub const MARK_INVERT: u8 = 16;
    /// `-m connmark` (`Action::connmark`), and its `!`.
    pub const CONNMARK: u8 = 32;
    pub const CONNMARK_INVERT: u8 = 64;
    /// `-m owner` (`Action::owner_match`).
    pub const OWNER: u8 = 128;
    /// `Action::spi_flags`: `-m esp` or `-m ah` (`Action::spi_range`), and its `!`.
    pub const SPI: u8 = 1;
    pub const SPI_INVERT: u8 = 2;
    /// `Action::ports_flags`: `-m sctp` or `-m dccp` `--sport`, `--dport`
    /// (`Action::ports_range`), `--dccp-types` (`Action::dccp_types`), each `!`.
    pub const PORTS_SPORT: u8 = 1;
    pub const PORTS_SPORT_INVERT: u8 = 2;
    pub const PORTS_DPORT: u8 = 4;
    pub const PORTS_DPORT_INVERT: u8 = 8;
    pub const PORTS_TYPES: u8 = 16;
    pub const PORTS_TYPES_INVERT: u8 = 32;
    /// `Action::addr_check`: `-s`, `-d` with a mask that is not a prefix, each `!`.
    pub const ADDR_SRC: u8 = 1;
    pub const ADDR_SRC_INVERT: u8 = 2;
    pub const ADDR_DST: u8 = 4;
    pub const ADDR_DST_INVERT: u8 = 8;
}

/// The SCTP and DCCP protocol numbers.
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_DCCP: u8 = 33;

/// `PacketInfo::spi` of a packet that has none (not ESP, AH, SCTP or DCCP, a later fragment,
/// cut short: xt_esp, xt_ah, xt_sctp and xt_dccp drop one cut short, see `hotdrop`).
pub const SPI_NONE: u64 = 1 << 32;

/// Where a DCCP packet's type sits in `PacketInfo::spi`, above its ports.
pub const SPI_DCCP_TYPE: u32 = 40;

/// Whether packet `pkt` passes rule action `a`'s `-m pkttype`, TOS byte and `-m mark`
/// matches, if it has them.
#[inline(always)]
pub fn packet_matches(pkt: &PacketInfo, a: &Action) -> bool {
    let check = a.pkt_check;
    let tos = pkt.tos as usize;
    // A match that drops the packet passes here: the rule stops the scan once its other
    // checks passed, and the round drops the packet (`hotdrop::at`).
    let cut = hotdrop::at(pkt, a);
    (check & pkt_check::TYPE == 0
        || (pkt.pkt_type == a.pkt_type) != (check & pkt_check::INVERT != 0))
        && (check & pkt_check::TOS == 0 || a.tos_set[(tos / 8) & 31] & (1 << (tos % 8)) != 0)
        && (check & pkt_check::MARK == 0
            || (pkt.mark & a.mark_mask == a.mark) != (check & pkt_check::MARK_INVERT != 0))
        && (check & pkt_check::CONNMARK == 0 || connmark_matches(pkt, a))
        && (check & pkt_check::OWNER == 0 || owner::matches(pkt, a))
        && (a.tcpmss_flags == 0 || cut || tcpmss::matches(pkt.tcp_mss, a))
        && (a.spi_flags == 0 || cut || spi_matches(pkt.spi, a))
        && (a.ports_proto == 0 || cut || ports_match(pkt, a))
        && (a.addr_check == 0 || addresses_match(pkt, a))
        && (a.tcp_option_flags == 0 || cut || tcp_option::matches(pkt, a))
        && (a.sctp_chunk_flags == 0 || cut || sctp_chunks::matches(pkt, a))
        && (a.dccp_option_flags == 0 || cut || dccp_option::matches(pkt, a))
}

/// `-s`/`-d` with any mask, as ip_packet_match compares them (`(addr & mask) != ip`).
#[inline(always)]
fn addresses_match(pkt: &PacketInfo, a: &Action) -> bool {
    let holds = |addr: [u8; 4], [want, mask]: [[u8; 4]; 2], on: u8, invert: u8| {
        let masked = u32::from_ne_bytes(addr) & u32::from_ne_bytes(mask);
        a.addr_check & on == 0
            || (masked == u32::from_ne_bytes(want)) != (a.addr_check & invert != 0)
    };
    holds(
        pkt.src,
        a.addr_masked[0],
        pkt_check::ADDR_SRC,
        pkt_check::ADDR_SRC_INVERT,
    ) && holds(
        pkt.dst,
        a.addr_masked[1],
        pkt_check::ADDR_DST,
        pkt_check::ADDR_DST_INVERT,
    )
}

/// xt_sctp's and xt_dccp's port checks, and xt_dccp's type check (a packet without its
/// ports matches no rule).
#[inline(always)]
fn ports_match(pkt: &PacketInfo, a: &Action) -> bool {
    // xt_dccp drops a packet without its generic header before it checks anything: at a
    // rule with `--dccp-option`, the round does (`dccp_option::unwalked`).
    if pkt.dccp_walk == dccp_option::walk::NO_HEADER && a.dccp_option_flags != 0 {
        return true;
    }
    if pkt.proto != a.ports_proto || pkt.spi == SPI_NONE {
        return false;
    }
    let f = a.ports_flags;
    let holds = |port: u16, [lo, hi]: [u16; 2], on: u8, invert: u8| {
        f & on == 0 || (lo <= port && port <= hi) != (f & invert != 0)
    };
    let (sport, dport) = ((pkt.spi >> 16) as u16, pkt.spi as u16);
    let kind = (pkt.spi >> SPI_DCCP_TYPE) as u32 & 0x0f;
    holds(
        sport,
        a.ports_range[0],
        pkt_check::PORTS_SPORT,
        pkt_check::PORTS_SPORT_INVERT,
    ) && holds(
        dport,
        a.ports_range[1],
        pkt_check::PORTS_DPORT,
        pkt_check::PORTS_DPORT_INVERT,
    ) && (f & pkt_check::PORTS_TYPES == 0
        || (a.dccp_types & (1 << kind) != 0) != (f & pkt_check::PORTS_TYPES_INVERT != 0))
}

/// xt_esp's and xt_ah's `spi_match` (a packet without an SPI matches no rule).
#[inline(always)]
fn spi_matches(spi: u64, a: &Action) -> bool {
    spi != SPI_NONE
        && (a.spi_range[0] as u64 <= spi && spi <= a.spi_range[1] as u64)
            != (a.spi_flags & pkt_check::SPI_INVERT != 0)
}

/// xt_connmark's match: no connection, no match (`!` or not).
#[inline(always)]
fn connmark_matches(pkt: &PacketInfo, a: &Action) -> bool {
    conntrack::ctstate::has_connection(pkt.ctstate)
        && (pkt.ct_mark & a.connmark_mask == a.connmark)
            != (a.pkt_check & pkt_check::CONNMARK_INVERT != 0)
}

/// The packet's mark after `-j MARK` rule action `a` (xt_MARK's `mark_tg`).
#[inline(always)]
pub fn set_mark(mark: u32, a: &Action) -> u32 {
    (mark & !a.set_mark_mask) ^ a.set_mark
}

/// What a rule whose target changes the packet and goes on (MARK, TOS, DSCP, TTL, NOTRACK)
/// does to it
/// (the others: nothing).
#[inline(always)]
pub fn rewrite(pkt: &mut PacketInfo, a: &Action) {
    match a.verdict {
        verdict::MARK => pkt.mark = set_mark(pkt.mark, a),
        verdict::NOTRACK => pkt.untracked = 1,
        verdict::TOS => {
            pkt.tos = (pkt.tos & !(a.set_mark_mask as u8)) ^ a.set_mark as u8;
            pkt.rewrite |= rewrite::HEADER;
        }
        verdict::TTL => {
            pkt.ttl = rewrite::ttl(pkt.ttl, a.set_mark_mask as u8, a.set_mark as u8);
            pkt.rewrite |= rewrite::HEADER;
        }
        // xt_TCPMSS never raises an MSS: rules one after the other lower it to the least.
        verdict::TCPMSS => {
            if pkt.rewrite & rewrite::MSS == 0 {
                (pkt.mss, pkt.mss_clamp) = (u16::MAX, 0);
            }
            match a.set_mark as u16 {
                rewrite::CLAMP_PMTU => pkt.mss_clamp = 1,
                mss => {
                    pkt.mss = pkt.mss.min(mss);
                    tcpmss::set(pkt, mss);
                }
            }
            pkt.rewrite |= rewrite::MSS;
            tcpmss::grow(pkt);
        }
        _ => {}
    }
}

/// The header fields the mangle table's targets rewrite.
pub mod rewrite {
    /// `PacketInfo::rewrite`: the TOS byte or the TTL changed; a SYN's MSS is to be lowered.
    pub const HEADER: u8 = 1;
    pub const MSS: u8 = 2;
    /// Egress: mangle OUTPUT changed the mark or TOS and the packet's new route leaves by
    /// `out_ifindex` (or another next hop): it is sent there once accepted.
    pub const ROUTE: u8 = 4;
    /// `-j TCPMSS --clamp-mss-to-pmtu`, as xt_TCPMSS's `mss` has it.
    pub const CLAMP_PMTU: u16 = 0xffff;

    /// `-j TTL`'s modes (`Action::set_mark_mask`; the value is `set_mark`), xt_TTL's.
    pub const TTL_SET: u8 = 0;
    pub const TTL_INC: u8 = 1;
    pub const TTL_DEC: u8 = 2;

    /// xt_TTL's new TTL: set, or raised up to 255, or lowered down to 0.
    #[inline(always)]
    pub fn ttl(ttl: u8, mode: u8, value: u8) -> u8 {
        match mode {
            TTL_SET => value,
            TTL_INC => ttl.saturating_add(value),
            _ => ttl.saturating_sub(value),
        }
    }
}

/// The packet types of xt_pkttype (the kernel's PACKET_*), which a packet's
/// `PacketInfo::pkt_type` holds.
pub mod pkt_type {
    pub const HOST: u8 = 0;
    pub const BROADCAST: u8 = 1;
    pub const MULTICAST: u8 = 2;
    pub const OTHERHOST: u8 = 3;

    /// xt_pkttype's type of a frame received with Ethernet destination `dst`: broadcast,
    /// multicast, or to this host (the stack drops frames for other hosts before netfilter
    /// sees them, so none is OTHERHOST there).
    #[inline(always)]
    pub fn of_destination(dst: [u8; 6]) -> u8 {
        if dst == [0xff; 6] {
            BROADCAST
        } else if dst[0] & 1 != 0 {
            MULTICAST
        } else {
            HOST
        }
    }
}

/// `Action::ct_checks`.
pub mod ct_check {
    pub const ORIG_SRC: u8 = 1;
    pub const ORIG_DST: u8 = 2;
    pub const REPL_SRC: u8 = 4;
    pub const REPL_DST: u8 = 8;
    pub const ADDRS: u8 = ORIG_SRC | ORIG_DST | REPL_SRC | REPL_DST;
    /// The same match has `--ctstate`: a packet without a connection then matches whatever
    /// the addresses (xt_conntrack's `conntrack_mt` decides such a packet by its state alone).
    pub const STATE: u8 = 16;
}

impl Action {
    /// What the data plane keeps in the action (`-m limit`'s bucket, `--mode nth`'s count)
    /// as a generation starts it: as a table replace starts xt_limit and xt_statistic, full
    /// and at 0. Rules with such a state never keep their action from the running
    /// generation: the compiler makes it anew, through here.
    pub fn restart(&mut self) {
        self.limit_credit_ns = self.limit_interval_ns * self.limit_burst as u64;
        self.limit_last_ns = 0;
        self.stat_seen = 0;
    }
}

impl Default for Action {
    fn default() -> Self {
        Action {
            verdict: 0,
            chain: 0,
            counter: 0,
            reject_with: 0,
            log_level: 0,
            log_flags: 0,
            nat_kind: 0,
            addr_check: 0,
            nat_flags: 0,
            nat_addr: [[0; 4]; 2],
            nat_port: [0; 2],
            limit_burst: 0,
            log_prefix: [0; LOG_PREFIX_LEN],
            limit_interval_ns: 0,
            limit_credit_ns: 0,
            limit_last_ns: 0,
            ct_checks: 0,
            ct_invert: 0,
            stat_mode: 0,
            stat_invert: 0,
            ct_other: 0,
            ct_proto: 0,
            pkt_check: 0,
            pkt_type: 0,
            ct_addr: [[0; 4]; 4],
            ct_mask: [[0; 4]; 4],
            stat_value: 0,
            stat_packet: 0,
            tos_set: [0; 32],
            stat_seen: 0,
            recent_op: 0,
            recent_flags: 0,
            recent_list: 0,
            recent_mask: [0; 4],
            recent_stamp_mask: 0,
            recent_hitcount: 0,
            recent_seconds: 0,
            mark: 0,
            mark_mask: 0,
            set_mark: 0,
            set_mark_mask: 0,
            connmark: 0,
            connmark_mask: 0,
            connmark_mode: 0,
            connmark_shift: 0,
            owner_match: 0,
            owner_invert: 0,
            nfmask: 0,
            owner_uid: [0; 2],
            owner_gid: [0; 2],
            ct_expires: [0; 2],
            ct_status_mask: 0,
            connlimit_flags: 0,
            time_flags: 0,
            time_weekdays: 0,
            tcpmss_flags: 0,
            spi_flags: 0,
            hashlimit_mode: 0,
            ct_ports: 0,
            connlimit_limit: 0,
            connlimit_mask: [0; 4],
            time_date: [0; 2],
            time_daytime: [0; 2],
            time_monthdays: 0,
            tcpmss_range: [0; 2],
            spi_range: [0; 2],
            hashlimit_table: 0,
            ports_flags: 0,
            ports_proto: 0,
            dccp_types: 0,
            ports_range: [[0; 2]; 2],
            ct_port_range: [[0; 2]; 4],
            addr_masked: [[[0; 4]; 2]; 2],
            tcp_option: 0,
            tcp_option_flags: 0,
            sctp_chunk_flags: 0,
            sctp_checks: 0,
            owner_group: 0,
            _sctp_pad: 0,
            sctp_check_set: [0; sctp_chunks::MAX_CHECKS],
            sctp_check_types: [0; sctp_chunks::MAX_CHECKS],
            sctp_types: [0; 4],
            addrtype_flags: 0,
            hotdrop: 0,
            addrtype_types: [0; 2],
            dccp_option: 0,
            dccp_option_flags: 0,
        }
    }
}

/// Packet and byte counters of a rule or policy; bytes count the IP length, as netfilter does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// One `-j` level: the chain to come back to and the rule to go on from.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    pub chain: u32,
    pub next_rule: u32,
}

/// What the entry program learned about a packet, handed to the classifier across tail calls
/// in a per-CPU map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketInfo {
    /// Addresses as in the packet (network byte order bytes).
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub in_ifindex: u32,
    pub out_ifindex: u32,
    /// IP total length.
    pub len: u32,
    pub proto: u8,
    /// 1 when sport/dport are valid (TCP/UDP, first fragment, header present).
    pub has_ports: u8,
    /// The packet's `conntrack::ctstate::with_nat` value: its state, SNAT and DNAT.
    pub ctstate: u8,
    /// 1: when the packet is accepted, `ct_entry` is stored under `ct_key` (netfilter
    /// confirms a connection only once its first packet got through).
    pub ct_commit: u8,
    pub sport: u16,
    pub dport: u16,
    /// ICMP type and code, valid when `has_icmp` is 1 (ICMP, first fragment, header present).
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub has_icmp: u8,
    /// TCP flags byte, valid when `has_tcp_flags` is 1 (TCP, first fragment, header present).
    pub tcp_flags: u8,
    pub has_tcp_flags: u8,
    /// 1 when the TCP header's data offset fits its segment: at least the 20 bytes of a
    /// header, at most what the IP packet holds after its header (else nf_conntrack's
    /// tcp_error calls it a truncated packet: INVALID, nothing tracked).
    pub tcp_header_whole: u8,
    pub ttl: u8,
    /// The IP header's TOS byte (DSCP and ECN).
    pub tos: u8,
    /// 1 for a non-first fragment.
    pub fragment: u8,
    /// rtn::* of the source and destination address, found only when a chain asks
    /// (`addrtype_done` bit 0: source, bit 1: destination).
    pub src_type: u8,
    pub dst_type: u8,
    pub addrtype_done: u8,
    /// The Ethernet source address (zeros on egress).
    pub mac_src: [u8; 6],
    /// Scratch for the classifier's trie keys (an LPM key: prefix length, then `FieldKey`):
    /// in map memory rather than on the stack, which is small, and where a key written on
    /// one path and not on another keeps the verifier from merging the paths.
    pub lookup_key: [u8; 16],
    /// The packet's mark (the skb's on egress, 0 on ingress: a packet from another namespace
    /// arrives without one), as `-j MARK` leaves it.
    pub mark: u32,
    /// The mark of the packet's connection, if it has one (`conntrack::ctstate::has_connection`).
    pub ct_mark: u32,
    /// Its socket's owner on OUTPUT, where a rule has `-m owner` (`owner::*` state, fsuid,
    /// fsgid).
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub owner: u8,
    pub _owner_pad: [u8; 7],
    /// Bit `k`: one of its file's supplementary groups lies in the generation's
    /// `--suppl-groups` range `k` (`owner::GroupRanges`).
    pub owner_groups: u64,
    /// Scratch of `-m recent`'s loops (`recent::Store::cell`).
    pub recent_cells: [u64; recent::CELLS],
    /// The classifier's bitmap indexes for this round, one per bitmap it scans (map memory
    /// for the same reason as `lookup_key`).
    pub bitmaps: [u32; SCANNED_BITMAPS],
    /// The chain's `ChainConfig::fields`, for the same reason.
    pub used_fields: u32,
    /// The scan over the chain's bitmap words, kept here to spare the classifier's stack: the
    /// chain's first action, the words no bitmap has empty and not visited yet, and the word
    /// and rule mask to start from.
    pub action_base: u32,
    pub candidates: [u64; SUMMARY_WORDS],
    pub start_word: u64,
    pub start_mask: u64,
    /// The matching rules of word `pending_word` still to visit one at a time, in order (up
    /// to the first that decides), when some of them only count or have a check of their own.
    pub pending: u64,
    pub pending_word: u32,
    /// `pkt_type::*` as xt_pkttype sees it (in what was padding: the fields before it keep
    /// their places, and the classifier's code its shape).
    pub pkt_type: u8,
    /// The `hotdrop` bits of the matches that drop this packet, its header cut short for
    /// them (in what was padding too).
    pub cut: u8,
    /// 1 when the classifier's scan stopped at `found` for a match that drops the packet
    /// there (`hotdrop::stops`), which the round then does.
    pub stop: u8,
    pub _pending_pad: [u8; 1],
    /// Chain being evaluated and the rule to start from.
    pub chain: u32,
    pub next_rule: u32,
    pub depth: u32,
    /// Program-array slot of the generation this packet is being judged by.
    pub slot: u32,
    /// The base chain the packet entered, whose policy applies when it returns from there.
    pub base_chain: u32,
    /// The classifier's result for the current round (u32::MAX: no rule).
    pub found: u32,
    pub stack: [Frame; MAX_CALL_DEPTH],
    pub ct_key: conntrack::CtKey,
    /// LOG rules the current round matched (action indexes), to be written to the log ring
    /// buffer by the classifier once the round is over; `log_count` of them.
    pub log_actions: [u32; MAX_LOGS_PER_ROUND],
    /// The packet's mark when each of them matched (`-j MARK` may change it after).
    pub log_marks: [u32; MAX_LOGS_PER_ROUND],
    pub log_count: u32,
    pub _log_pad: u32,
    /// The flow cache: the packet's key, whether its way so far is cacheable (1), and the
    /// verdict being built (`flow.epoch` is the generation's, from the base chain).
    pub flow_key: FlowKey,
    pub flow_cacheable: u32,
    pub flow: FlowVerdict,
    /// nat: which chains the packet is in (`phase::*`); 1 when it goes its connection's reply
    /// way; 1 when it opens a connection under the nat table (its chains choose a mapping);
    /// 1 when its connection is translated (TC rewrites it); 1 when it already carries
    /// the tuple nat gave it (a local packet OUTPUT rewrote and routed again, met anew on
    /// its new device).
    pub phase: u8,
    pub ct_reply: u8,
    pub nat_new: u8,
    pub ct_nat: u8,
    pub ct_rewritten: u8,
    /// 1 for a reply of a `nat_flag::LOOPED` connection.
    pub ct_looped: u8,
    /// 1 when the mangle table is loaded (`chain_flag::MANGLE`); the `rewrite::HEADER` and
    /// `MSS` bits of what rules changed that the packet does not have yet.
    pub mangle: u8,
    pub rewrite: u8,
    /// The nat target a nat chain matched, for the mapping.
    pub nat_rule: NatRule,
    /// The packet's connection's original tuple, and the inverse of its reply tuple: for a
    /// new connection, its first packet's tuple as nat rewrites it so far (`-m conntrack
    /// --ctorigsrc` and the like look at both; valid when `ctstate::has_connection`).
    pub orig: conntrack::Tuple,
    pub xlat: conntrack::Tuple,
    /// The search for a free port (`conntrack::nat::port_search`), in map memory so that its
    /// loop body verifies once.
    pub search: NatSearch,
    /// The `conntrack::ips` bits of the packet's connection, if it has one, and its seconds
    /// left (0 before it is confirmed). Last: the fields the entry programs use most keep
    /// their places.
    pub ct_expires: u32,
    pub ct_status: u8,
    pub _ct_status_pad: [u8; 3],
    pub ct_entry: conntrack::CtEntry,
    /// `-j TCPMSS` (`rewrite::MSS`): the least `--set-mss` the packet met (u16::MAX: none),
    /// and 1 if it met `--clamp-mss-to-pmtu`; 1 while a TCPMSS rule would add an MSS option
    /// to it (a SYN without one, its data or room: `tcpmss::grow`).
    pub mss: u16,
    pub mss_clamp: u8,
    pub mss_adds: u8,
    /// `-m connlimit`'s walk over a list, in map memory so that `bpf_loop`'s callback
    /// verifies once.
    pub connlimit_walk: connlimit::Walk,
    /// The TCP packet's MSS option (`tcpmss::NONE`, `MALFORMED`), read where the generation
    /// has a `-m tcpmss` rule (`chain_flag::TCPMSS`).
    pub tcp_mss: u32,
    /// An ESP or AH packet's SPI, or an SCTP or DCCP packet's ports (source << 16 |
    /// destination; a DCCP packet's type above, at `SPI_DCCP_TYPE`), from its first
    /// fragment; `SPI_NONE` for any other.
    pub spi: u64,
    /// 1 once a raw chain's `-j NOTRACK` (`-j CT --notrack`) exempted the packet from
    /// tracking: its state is UNTRACKED.
    pub untracked: u8,
    /// `RESUME` when the classifier hands the packet back to the entry program after the raw
    /// table accepted it (the entry then looks its connection up, and goes on).
    pub resume: u8,
    pub _raw_pad: [u8; 6],
    /// The option kinds of a TCP packet (bit `k % 64` of word `k / 64`, `tcp_option::WALKED`
    /// in bit 0), read where the generation has a `--tcp-option` rule
    /// (`chain_flag::TCP_OPTION`).
    pub tcp_kinds: [u64; 4],
    /// An SCTP packet's chunks, walked where the generation has a `--chunk-types` rule
    /// (`chain_flag::SCTP_CHUNKS`): `sctp_chunks::walk` bits, the walk's next chunk and the
    /// IP packet's end (offsets in the frame: in map memory, so that `bpf_loop`'s callback
    /// verifies once), the chunk types met (bit `t % 64` of word `t / 64`), and for each type
    /// below `sctp_chunks::UNUSED_TYPE` the flag values met (`sctp_chunks::flag_value` bits).
    pub sctp_walk: u8,
    pub _sctp_pad: [u8; 3],
    pub sctp_offset: u32,
    pub sctp_end: u32,
    pub _sctp_pad2: u32,
    pub sctp_types: [u64; 4],
    pub sctp_flags: [u32; sctp_chunks::FLAG_TYPES],
    /// Where the words of each bitmap the classifier scans start in its block (`bitmaps`'
    /// order, then the chain's count-only and checked bitmaps; `bitmap::Shape::starts`), the
    /// length of a summary, and where the summaries of the `bitmaps` start: map memory for
    /// the same reason as `lookup_key`.
    pub offsets: [u32; OFFSETS],
    pub summary_words: u32,
    pub summaries: [u32; SCANNED_BITMAPS],
    pub _summaries_pad: u32,
    /// A DCCP packet's options, walked where the generation has a `--dccp-option` rule
    /// (`chain_flag::DCCP_OPTION`): `dccp_option::walk` state, the walk's next option and
    /// the options' end (offsets in the frame: in map memory, so that `bpf_loop`'s callback
    /// verifies once), the option types met (bit `t % 64` of word `t / 64`).
    pub dccp_walk: u8,
    pub _dccp_pad: [u8; 3],
    pub dccp_offset: u32,
    pub dccp_end: u32,
    pub _dccp_pad2: u32,
    pub dccp_types: [u64; 4],
}

/// `PacketInfo::offsets`: the scanned bitmaps, then the count-only and checked ones.
pub const OFFSETS: usize = SCANNED_BITMAPS + 2;
pub const OFFSET_COUNT_ONLY: usize = SCANNED_BITMAPS;
pub const OFFSET_CHECKED: usize = SCANNED_BITMAPS + 1;

/// `PacketInfo::resume`
pub const RESUME: u8 = 1;

/// `PacketInfo::phase`: the chains a packet is in.
pub mod phase {
    /// The filter table's (and nothing else, without nat).
    pub const FILTER: u8 = 0;
    /// nat PREROUTING (or OUTPUT), for a new connection: the destination's mapping.
    pub const NAT_DST: u8 = 1;
    /// nat POSTROUTING (or INPUT), once filter accepted it: the source's mapping.
    pub const NAT_SRC: u8 = 2;
    /// A base chain of the mangle table (`base_chain` says which).
    pub const MANGLE: u8 = 3;
    /// A base chain of the raw table, before the packet's connection is looked up: once it
    /// accepts, the entry program takes the packet again (`PacketInfo::resume`).
    pub const RAW: u8 = 4;
}

/// A nat rule's target, as `Action` has it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NatRule {
    /// `nat_kind::*`, 0: none (the chain accepted, no mapping).
    pub kind: u8,
    pub _pad: [u8; 3],
    pub flags: u32,
    pub addr: [[u8; 4]; 2],
    pub port: [u16; 2],
}

/// A search for a free port: candidates `first + (off + i) % count` for i below `tries`;
/// `found` is the port, or `u32::MAX`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NatSearch {
    /// bpf_ktime_get_ns() of the search: entries expired by then are free.
    pub now: u64,
    pub first: u32,
    pub count: u32,
    pub off: u32,
    pub tries: u32,
    pub found: u32,
    pub _pad: u32,
}

/// LOG rules one round of the classifier records for one packet; more are counted as lost.
pub const MAX_LOGS_PER_ROUND: usize = 8;

/// Bytes of the IP packet a log record holds (headers, options, an ICMP error's quote); a
/// power of two.
pub const LOG_PACKET_BYTES: usize = 256;

/// One LOG record in the `PCN_LOG` ring buffer, formatted by `pcn-iptables --log-follow`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogRecord {
    /// CLOCK_MONOTONIC time of the packet.
    pub time_ns: u64,
    /// 0 on egress (OUTPUT: no input interface).
    pub in_ifindex: u32,
    /// 0 for INPUT.
    pub out_ifindex: u32,
    /// The skb's mark (egress only), 0 otherwise.
    pub mark: u32,
    /// Bytes of the IP packet present in `packet`, and the packet's IP total length.
    pub caplen: u16,
    pub ip_len: u16,
    /// `Action::log_level`, `log_flags`; `has_mac`: 1 when `mac` holds the Ethernet header.
    pub level: u8,
    pub flags: u8,
    pub has_mac: u8,
    pub _pad: u8,
    pub mac: [u8; 14],
    pub _pad2: [u8; 2],
    pub prefix: [u8; LOG_PREFIX_LEN],
    pub packet: [u8; LOG_PACKET_BYTES],
    /// `--log-uid`: the fsuid and fsgid of the file of the packet's socket, as nf_log prints
    /// them, valid when `has_uid` is 1 (OUTPUT only, a full socket with a file).
    pub uid: u32,
    pub gid: u32,
    pub has_uid: u8,
    pub _pad3: [u8; 3],
}

/// What userspace tells the data plane at every change (the pinned `PCN_SETTINGS`, one
/// entry): the namespace's ICMP rate limit sysctls, which REJECT's ICMP errors obey as the
/// kernel's own do, and where `--log-uid` finds a socket's owner in the kernel's structures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// 1 once userspace wrote them; until then the data plane uses the kernel's defaults.
    pub set: u32,
    /// net.ipv4.icmp_ratemask: the ICMP types that are rate limited (bit `1 << type`).
    pub icmp_ratemask: u32,
    /// net.ipv4.icmp_ratelimit, in nanoseconds: the per-destination bucket's cost of one
    /// error (the bucket holds 6 of them, `ICMP_PEER_BURST`).
    pub icmp_ratelimit_ns: u64,
    /// net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst: the namespace-wide bucket.
    pub icmp_msgs_per_sec: u32,
    pub icmp_msgs_burst: u32,
    /// Byte offsets, from the kernel's BTF, of `sock.sk_socket`, `socket.file`,
    /// `file.f_cred`, `cred.fsuid` and `cred.fsgid` (`--log-uid`); `sock_offsets_set` is 1
    /// when they are known.
    pub sk_socket: u32,
    pub socket_file: u32,
    pub file_f_cred: u32,
    pub cred_fsuid: u32,
    pub cred_fsgid: u32,
    pub sock_offsets_set: u32,
    /// `cred.group_info`, `group_info.ngroups` and `group_info.gid` (`--suppl-groups`),
    /// known with the others.
    pub cred_group_info: u32,
    pub group_info_ngroups: u32,
    pub group_info_gid: u32,
    pub _groups_pad: u32,
    /// The namespace's IPv4 interface addresses, in the kernel's order (primary first): where
    /// REJECT answers a forwarded packet from on kernels whose bpf_fib_lookup cannot say
    /// (FIB_LOOKUP_SRC is 6.7's).
    pub if_addrs: [IfAddr; IF_ADDRS],
    /// CLOCK_TAI less UTC, in seconds (`-m time` reads TAI), and the kernel's timezone in
    /// minutes west of UTC (`--kerneltz`), as of the last change.
    pub tai_offset: i32,
    pub tz_minutes_west: i32,
    /// What the kernel's BTF told the first install that read it (`kernel_fact::*`; 0: not
    /// read yet), so that later commands need not parse it again.
    pub kernel_facts: u32,
    pub _facts_pad: u32,
}

/// `Settings::kernel_facts`.
pub mod kernel_fact {
    /// The BTF was read.
    pub const READ: u32 = 1;
    /// bpf_fib_lookup takes a mark (BPF_FIB_LOOKUP_MARK, Linux 6.10).
    pub const FIB_MARK: u32 = 2;
}

/// Interface addresses `Settings` holds.
pub const IF_ADDRS: usize = 8;

/// An IPv4 address of an interface, with its netmask (ifindex 0: none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IfAddr {
    pub ifindex: u32,
    pub addr: [u8; 4],
    pub mask: [u8; 4],
}

/// The kernel's defaults for `Settings`' ICMP limits (net/ipv4/icmp.c, per namespace).
pub const ICMP_RATEMASK_DEFAULT: u32 = 0x1818;
pub const ICMP_RATELIMIT_NS_DEFAULT: u64 = 1_000_000_000;
pub const ICMP_MSGS_PER_SEC_DEFAULT: u32 = 1000;
pub const ICMP_MSGS_BURST_DEFAULT: u32 = 50;
/// inet_peer_xrlim_allow's XRLIM_BURST_FACTOR: a destination's bucket holds this many errors.
pub const ICMP_PEER_BURST: u64 = 6;
/// Destinations whose ICMP error bucket the data plane remembers (least recently used go; an
/// LRU map reserves every entry, 88 bytes each).
pub const ICMP_PEERS: u32 = 4096;

/// One destination's bucket of ICMP errors (inet_peer's rate_tokens and rate_last).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IcmpPeer {
    pub tokens_ns: u64,
    pub last_ns: u64,
}

/// The namespace-wide bucket of ICMP errors (icmp_global_credit and icmp_global_stamp).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IcmpGlobal {
    pub credit: i64,
    pub stamp_ns: u64,
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for Block {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for addrtype::LocalRoute {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for ChainConfig {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for Action {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for Counter {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for PacketInfo {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for LogRecord {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for Settings {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for owner::GroupRanges {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for IcmpPeer {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for IcmpGlobal {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for crate::conntrack::CtKey {}
    // SAFETY: #[repr(C)] plain old data, no padding holes the kernel would reject.
    unsafe impl aya::Pod for crate::conntrack::CtEntry {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xt_owner's `owner_mt`, line by line (`state`: no socket, no file, a file whose
    /// credentials have the supplementary `groups`).
    fn kernel_owner(state: u8, uid: u32, gid: u32, groups: &[u32], a: &Action) -> bool {
        let (m, inv) = (a.owner_match, a.owner_invert);
        if state == owner::NO_SOCKET {
            return (m ^ inv) == 0;
        } else if m & inv & owner::SOCKET != 0 {
            return false;
        }
        if state == owner::NO_FILE {
            return ((m ^ inv) & (owner::UID | owner::GID)) == 0;
        }
        if m & owner::UID != 0
            && ((a.owner_uid[0] <= uid && uid <= a.owner_uid[1]) ^ (inv & owner::UID == 0))
        {
            return false;
        }
        if m & owner::GID != 0 {
            let within = |g: u32| a.owner_gid[0] <= g && g <= a.owner_gid[1];
            let mut found = within(gid);
            if !found && m & owner::SUPPL_GROUPS != 0 {
                found = groups.iter().any(|&g| within(g));
            }
            if found ^ (inv & owner::GID == 0) {
                return false;
            }
        }
        true
    }

    /// The egress walk as the data plane runs it: `groups.len() × n` steps at most.
    fn walk_groups(groups: &[u32], ranges: &owner::GroupRanges) -> u64 {
        let mut w = owner::GroupWalk::default();
        for i in 0..groups.len() as u32 * ranges.n {
            if !w.step(i, ranges, |g| groups.get(g as usize).copied()) {
                break;
            }
        }
        w.found
    }

    fn group_ranges(list: &[[u32; 2]]) -> owner::GroupRanges {
        let mut r = owner::GroupRanges {
            n: list.len() as u32,
            ..Default::default()
        };
        r.ranges[..list.len()].copy_from_slice(list);
        r
    }

    #[test]
    fn group_walk_finds_each_range_with_a_group() {
        let all: [[u32; 2]; 64] = core::array::from_fn(|k| [k as u32 * 10, k as u32 * 10 + 4]);
        for n in [1, 2, 3, 63, 64] {
            let ranges = group_ranges(&all[..n]);
            for groups in [
                &[][..],
                &[3],
                &[5, 6],
                &[0, 14, 633, 634],
                &[9, 12, 12, 630, 7],
            ] {
                let want = (0..n).fold(0u64, |m, k| {
                    let [lo, hi] = all[k];
                    m | (groups.iter().any(|g| lo <= *g && *g <= hi) as u64) << k
                });
                assert_eq!(walk_groups(groups, &ranges), want, "{n} ranges, {groups:?}");
            }
        }
        // Every range found: the walk stops before the last group.
        let ranges = group_ranges(&[[1, 1]]);
        let mut w = owner::GroupWalk::default();
        assert!(!w.step(0, &ranges, |_| Some(1)));
    }

    #[test]
    fn owner_follows_xt_owner() {
        // The generation's ranges; the rule's is the second.
        let ranges = group_ranges(&[[5000, 5010], [100, 100], [99, 99]]);
        for m in (1..16u8).filter(|m| m & owner::SUPPL_GROUPS == 0 || m & owner::GID != 0) {
            for inv in (0..8u8).filter(|i| i & !m == 0) {
                let a = Action {
                    owner_match: m,
                    owner_invert: inv,
                    owner_uid: [1000, 1999],
                    owner_gid: [100, 100],
                    owner_group: 1,
                    ..Default::default()
                };
                let ids = [(0, 0), (1000, 100), (1500, 5), (2000, 100)];
                let groups: [&[u32]; 4] = [&[], &[7, 100], &[99, 101], &[5005, 99]];
                for state in [owner::NO_SOCKET, owner::NO_FILE, owner::FILE] {
                    for ((uid, gid), groups) in ids.into_iter().flat_map(|i| groups.map(|g| (i, g)))
                    {
                        // What egress finds for the packet before the classifier.
                        let pkt = PacketInfo {
                            owner: state,
                            owner_uid: uid,
                            owner_gid: gid,
                            owner_groups: walk_groups(groups, &ranges),
                            ..Default::default()
                        };
                        assert_eq!(
                            owner::matches(&pkt, &a),
                            kernel_owner(state, uid, gid, groups, &a),
                            "match {m} invert {inv} state {state} uid {uid} gid {gid} {groups:?}"
                        );
                    }
                }
            }
        }
    }

    /// xt_TTL's `ttl_tg` (an int that is clamped), and xt_DSCP's `tos_tg` and `dscp_tg`
    /// through the actions the compiler makes of them.
    #[test]
    fn rewrites_follow_xt_ttl_tos_and_dscp() {
        for ttl in 0..=255u8 {
            for value in [0u8, 1, 2, 64, 254, 255] {
                let wide = ttl as i32;
                let kernel = [value as i32, wide + value as i32, wide - value as i32];
                for (mode, want) in kernel.into_iter().enumerate() {
                    let a = Action {
                        verdict: verdict::TTL,
                        set_mark: value as u32,
                        set_mark_mask: mode as u32,
                        ..Default::default()
                    };
                    let mut pkt = PacketInfo {
                        ttl,
                        ..Default::default()
                    };
                    rewrite(&mut pkt, &a);
                    assert_eq!(pkt.ttl as i32, want.clamp(0, 255), "{ttl} {mode} {value}");
                    assert_eq!(pkt.rewrite, rewrite::HEADER);
                }
            }
        }
        for tos in 0..=255u8 {
            // TOS --set-tos 0x10/0x3f; DSCP --set-dscp 0x2e (ECN bits kept).
            for (value, mask, want) in [
                (0x10u32, 0x3fu32, (tos & !0x3f) ^ 0x10),
                (0x2e << 2, 0xfc, (tos & 0x03) | 0x2e << 2),
            ] {
                let a = Action {
                    verdict: verdict::TOS,
                    set_mark: value,
                    set_mark_mask: mask,
                    ..Default::default()
                };
                let mut pkt = PacketInfo {
                    tos,
                    ..Default::default()
                };
                rewrite(&mut pkt, &a);
                assert_eq!(pkt.tos, want);
            }
        }
    }

    /// xt_esp's and xt_ah's `spi_match`; a packet without an SPI matches no rule, `!` or not.
    #[test]
    fn spis_match_their_range() {
        let rule = |invert: bool| Action {
            spi_flags: pkt_check::SPI | if invert { pkt_check::SPI_INVERT } else { 0 },
            spi_range: [5, u32::MAX],
            ..Default::default()
        };
        for (spi, inside) in [(4u64, false), (5, true), (u32::MAX as u64, true)] {
            assert_eq!(spi_matches(spi, &rule(false)), inside);
            assert_eq!(spi_matches(spi, &rule(true)), !inside);
        }
        assert!(!spi_matches(SPI_NONE, &rule(false)) && !spi_matches(SPI_NONE, &rule(true)));
    }

    #[test]
    fn packet_types_by_ethernet_destination() {
        assert_eq!(pkt_type::of_destination([0xff; 6]), pkt_type::BROADCAST);
        assert_eq!(
            pkt_type::of_destination([1, 0, 0x5e, 0, 0, 1]),
            pkt_type::MULTICAST
        );
        assert_eq!(pkt_type::of_destination([2, 0, 0, 0, 0, 1]), pkt_type::HOST);
        assert_eq!(pkt_type::of_destination([0; 6]), pkt_type::HOST);
    }
}
