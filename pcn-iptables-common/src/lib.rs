//! `#[repr(C)]` types and constants shared by the pcn-iptables userspace and its eBPF programs.
#![no_std]

/// Rules one chain can hold: the classifier's bitmaps have one bit per rule.
pub const MAX_RULES_PER_CHAIN: usize = 16384;
/// 64-bit words in a rule bitmap.
pub const MAX_WORDS: usize = MAX_RULES_PER_CHAIN / 64;
/// Counter slots (rules of every chain plus the base chains' policies).
pub const MAX_COUNTERS: u32 = 65536;
/// Chains (base and user-defined) the data plane can evaluate.
pub const MAX_CHAINS: u32 = 1024;
/// Nested `-j` calls to user chains a packet may be inside at once.
pub const MAX_CALL_DEPTH: usize = 16;

/// Chain ids of the filter table's base chains; user chains follow.
pub const CHAIN_INPUT: u32 = 0;
pub const CHAIN_FORWARD: u32 = 1;
pub const CHAIN_OUTPUT: u32 = 2;
/// No chain: the packet is not filtered (e.g. a forwarded packet seen again on egress).
pub const CHAIN_NONE: u32 = u32::MAX;

/// Slots of the pinned program arrays: one classifier per generation, two generations.
pub const GENERATIONS: u32 = 2;

/// Bytes per entry of the map that stores a generation's ruleset text.
pub const STATE_CHUNK: usize = 4096;

/// A bitmap of the rules of one chain that a field value satisfies (bit i = rule i).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bitmap {
    pub words: [u64; MAX_WORDS],
}

/// Which packet fields the rules of a chain look at (`ChainConfig::fields`).
pub mod field {
    pub const SRC: u32 = 1 << 0;
    pub const DST: u32 = 1 << 1;
    pub const PROTO: u32 = 1 << 2;
    pub const SPORT: u32 = 1 << 3;
    pub const DPORT: u32 = 1 << 4;
    pub const IN_IFACE: u32 = 1 << 5;
    pub const OUT_IFACE: u32 = 1 << 6;
}

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
    /// No target: count and go on with the next rule.
    pub const CONTINUE: u32 = 6;
}

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
    pub _pad: u32,
}

/// Per rule, per generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Action {
    /// `verdict::*`
    pub verdict: u32,
    /// Target chain id for JUMP/GOTO.
    pub chain: u32,
    /// Counter slot of the rule.
    pub counter: u32,
    pub _pad: u32,
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
    pub _pad: [u8; 2],
    pub sport: u16,
    pub dport: u16,
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
}

/// LPM trie keys: two bytes of chain id (big endian), then the field's value in network byte
/// order. Prefix lengths count the chain bits.
pub type AddrKey = [u8; 6];
pub type ProtoKey = [u8; 3];
/// Chain, a "has ports" byte, port (big endian): packets without ports look up
/// `[chain, 0, 0, 0]` with the prefix covering chain and flag.
pub type PortKey = [u8; 5];

/// Hash key for interface bitmaps; `ifindex` 0 is the entry for interfaces unknown at compile
/// time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IfaceKey {
    pub chain: u32,
    pub ifindex: u32,
}

/// Bits of the chain byte in trie keys.
pub const CHAIN_KEY_BITS: u32 = 16;

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: all of these are plain old data with no padding holes the kernel would reject.
    unsafe impl aya::Pod for Bitmap {}
    unsafe impl aya::Pod for ChainConfig {}
    unsafe impl aya::Pod for Action {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for PacketInfo {}
    unsafe impl aya::Pod for IfaceKey {}
}
