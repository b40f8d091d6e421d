//! The classifier's field table, defined once for the compiler and the eBPF classifier: which
//! packet fields are scanned, in which order their bitmaps are ANDed, how wide each field's
//! trie key is, and how a packet's value is keyed (`packet_value`, which the data plane runs
//! and the compiler's tests check its trie entries against).
//!
//! To add a field: an id in `field`, an entry in `SCANNED` (before the `--ports` pair), an arm
//! in `packet_value`, its line in the eBPF classifier's `scan!` list (`classify.rs`, which
//! fails to build when a field of the table is missing there), and the compiler's constraint
//! for it (`pcn-iptables/src/compile`).

use crate::PacketInfo;

/// The packet fields rules look at. Each is a key prefix in the one trie of a generation
/// (`FieldKey`), and `1 << id` is its bit in `ChainConfig::fields`.
pub mod field {
    /// Not a packet field: stands for "every rule of the chain" (`ChainConfig::rules`).
    pub const RULES: u8 = 0;
    pub const SRC: u8 = 1;
    pub const DST: u8 = 2;
    pub const PROTO: u8 = 3;
    pub const SPORT: u8 = 4;
    pub const DPORT: u8 = 5;
    pub const IN_IFACE: u8 = 6;
    pub const OUT_IFACE: u8 = 7;
    /// The packet's `conntrack::ctstate::with_nat` value: its state, SNAT and DNAT.
    pub const CTSTATE: u8 = 8;
    /// `[1, type, code]` for an ICMP packet with its header (first fragment), `[0]` otherwise
    /// (`[2]` for any packet cut short for tcp, udp or icmp: `hotdrop::CUT_KEY`; the same for
    /// the ports and the TCP flags).
    pub const ICMP: u8 = 9;
    /// `[1, flags byte]` for a TCP packet with its header (first fragment), `[0]` otherwise.
    pub const TCP_FLAGS: u8 = 10;
    /// `[hi, lo]`: the IP total length.
    pub const LENGTH: u8 = 11;
    /// `[ttl]`
    pub const TTL: u8 = 12;
    /// `[1]` for a non-first fragment (`-f`), `[0]` otherwise.
    pub const FRAGMENT: u8 = 13;
    /// The Ethernet source address, all 6 bytes (`-m mac`); `[0; 6]` where there is none.
    pub const MAC_SRC: u8 = 14;
    /// The route type (`rtn::*`) of the source and destination address (`-m addrtype`).
    pub const SRC_TYPE: u8 = 15;
    pub const DST_TYPE: u8 = 16;
    /// `-m multiport --ports`: a rule matches when its bit is set in the entry of the
    /// packet's source port here OR of its destination port in `ANY_PORT_DST` (both keyed
    /// like SPORT/DPORT). Rules without `--ports` have their bit set in both.
    pub const ANY_PORT_SRC: u8 = 17;
    pub const ANY_PORT_DST: u8 = 18;

    pub const fn bit(id: u8) -> u32 {
        1 << id
    }
}

/// A scanned packet field: its id, the width of its value in bits, and whether only some
/// packets have it (ports, ICMP type and code, TCP flags): such a value is keyed `[1, value]`
/// and a packet without it looks up `[0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub id: u8,
    pub width: u32,
    pub optional: bool,
}

impl Field {
    const fn new(id: u8, width: u32, optional: bool) -> Field {
        Field {
            id,
            width,
            optional,
        }
    }

    /// Bits of the trie key after the header for a packet that has the value.
    pub const fn key_bits(&self) -> u32 {
        self.width + if self.optional { 8 } else { 0 }
    }
}

/// The fields the classifier scans, in the order of their bitmaps after the chain's own
/// (bitmap 0, every rule): ANDed word by word, except the two `--ports` ones, which are ORed
/// together and must come last.
pub const SCANNED: [Field; 18] = [
    Field::new(field::SRC, 32, false),
    Field::new(field::DST, 32, false),
    Field::new(field::PROTO, 8, false),
    Field::new(field::SPORT, 16, true),
    Field::new(field::DPORT, 16, true),
    Field::new(field::IN_IFACE, 32, false),
    Field::new(field::OUT_IFACE, 32, false),
    Field::new(field::CTSTATE, 8, false),
    Field::new(field::ICMP, 16, true),
    Field::new(field::TCP_FLAGS, 8, true),
    Field::new(field::LENGTH, 16, false),
    Field::new(field::TTL, 8, false),
    Field::new(field::FRAGMENT, 8, false),
    Field::new(field::MAC_SRC, 48, false),
    Field::new(field::SRC_TYPE, 32, false),
    Field::new(field::DST_TYPE, 32, false),
    Field::new(field::ANY_PORT_SRC, 16, true),
    Field::new(field::ANY_PORT_DST, 16, true),
];

/// Bitmaps the classifier reads per word: the chain's rules, then one per `SCANNED` field.
pub const SCANNED_BITMAPS: usize = 1 + SCANNED.len();
/// Of those, the ones ANDed: all but the `--ports` pair, which follows them.
pub const ANDED_BITMAPS: usize = SCANNED_BITMAPS - 2;

/// The `field::bit`s of every field of the table.
pub const ALL_SCANNED: u32 = {
    let mut bits = 0;
    let mut i = 0;
    while i < SCANNED.len() {
        bits |= field::bit(SCANNED[i].id);
        i += 1;
    }
    bits
};

/// Field `id` in the table (a compile-time error in a const context when it is not there).
pub const fn spec(id: u8) -> Field {
    SCANNED[position(id) - 1]
}

/// The index of field `id`'s bitmap among the scanned ones (`PacketInfo::bitmaps`).
pub const fn position(id: u8) -> usize {
    let mut i = 0;
    while i < SCANNED.len() {
        if SCANNED[i].id == id {
            return i + 1;
        }
        i += 1;
    }
    panic!("not a scanned field")
}

// The table's invariants, checked when it compiles.
const _: () = {
    let mut i = 0;
    while i < SCANNED.len() {
        let f = SCANNED[i];
        assert!(f.id != field::RULES && f.id < 32, "ids are bits of a u32");
        assert!(position(f.id) == i + 1, "every id once");
        assert!(
            f.width.is_multiple_of(8) && f.key_bits() <= 48,
            "6 bytes of value"
        );
        i += 1;
    }
    assert!(position(field::ANY_PORT_SRC) == ANDED_BITMAPS);
    assert!(position(field::ANY_PORT_DST) == ANDED_BITMAPS + 1);
};

/// Key of the field trie: field id, chain id (big endian), then the value in network byte
/// order: an address, a protocol, `[has ports, port hi, port lo]` (packets without ports look
/// up `[0]`), an ifindex, a MAC address (the only 6-byte value; the others pad with zeros).
/// Prefix lengths count every bit from the start, so the entries of one field and chain all
/// extend `FIELD_KEY_HEADER_BITS`, and the header alone (a prefix of exactly that length) is
/// the field's default entry.
pub type FieldKey = [u8; 9];
pub const FIELD_KEY_HEADER_BITS: u32 = 24;

pub const fn field_key(id: u8, chain: u32, value: [u8; 4]) -> FieldKey {
    field_key6(id, chain, [value[0], value[1], value[2], value[3], 0, 0])
}

pub const fn field_key6(id: u8, chain: u32, value: [u8; 6]) -> FieldKey {
    let c = (chain as u16).to_be_bytes();
    [
        id, c[0], c[1], value[0], value[1], value[2], value[3], value[4], value[5],
    ]
}

// Packet values travel as the low 48 bits of a u64 (the key's 6 value bytes, big endian), in
// registers rather than as arrays on the classifier's small stack.

/// The key's value bytes of a packet value.
#[inline(always)]
pub const fn value_bytes(value: u64) -> [u8; 6] {
    let v = value.to_be_bytes();
    [v[2], v[3], v[4], v[5], v[6], v[7]]
}

/// A 4-byte value (an address, an ifindex).
#[inline(always)]
pub const fn v4(v: [u8; 4]) -> u64 {
    (u32::from_be_bytes(v) as u64) << 16
}

/// A 2-byte value.
#[inline(always)]
pub const fn v2(v: u16) -> u64 {
    (v as u64) << 32
}

/// A 1-byte value.
#[inline(always)]
pub const fn v1(v: u8) -> u64 {
    (v as u64) << 40
}

/// A MAC address.
#[inline(always)]
pub const fn mac_value(m: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// A value that only some packets have (ports, ICMP type/code, TCP flags): `[1, value]`,
/// `bits` long, or `[absent]` for the packets without it (`[0]`, or `[hotdrop::CUT_KEY]` for
/// a packet whose header is cut short for tcp, udp or icmp, whatever it holds).
#[inline(always)]
pub const fn optional_value(has: u8, absent: u8, bits: u32, value: [u8; 2]) -> (u32, u64) {
    if has != 0 && absent == 0 {
        (
            bits,
            v1(1) | (value[0] as u64) << 32 | (value[1] as u64) << 24,
        )
    } else {
        (8, v1(absent))
    }
}

/// What the classifier looks field `id` up with for packet `p`: the bits of the key's value
/// that count, and the value (see `value_bytes`). Called with a constant `id`, it folds to
/// the one arm.
#[inline(always)]
pub fn packet_value(id: u8, p: &PacketInfo) -> (u32, u64) {
    macro_rules! bits {
        ($id:expr) => {
            const { spec($id).key_bits() }
        };
    }
    let absent = crate::hotdrop::absent_key(p);
    match id {
        field::SRC => (bits!(field::SRC), v4(p.src)),
        field::DST => (bits!(field::DST), v4(p.dst)),
        field::PROTO => (bits!(field::PROTO), v1(p.proto)),
        field::SPORT => optional_value(
            p.has_ports,
            absent,
            bits!(field::SPORT),
            p.sport.to_be_bytes(),
        ),
        field::DPORT => optional_value(
            p.has_ports,
            absent,
            bits!(field::DPORT),
            p.dport.to_be_bytes(),
        ),
        field::IN_IFACE => (bits!(field::IN_IFACE), v4(p.in_ifindex.to_be_bytes())),
        field::OUT_IFACE => (bits!(field::OUT_IFACE), v4(p.out_ifindex.to_be_bytes())),
        field::CTSTATE => (bits!(field::CTSTATE), v1(p.ctstate)),
        field::ICMP => optional_value(
            p.has_icmp,
            absent,
            bits!(field::ICMP),
            [p.icmp_type, p.icmp_code],
        ),
        field::TCP_FLAGS => optional_value(
            p.has_tcp_flags,
            absent,
            bits!(field::TCP_FLAGS),
            [p.tcp_flags, 0],
        ),
        field::LENGTH => (bits!(field::LENGTH), v2(p.len as u16)),
        field::TTL => (bits!(field::TTL), v1(p.ttl)),
        field::FRAGMENT => (bits!(field::FRAGMENT), v1(p.fragment)),
        field::MAC_SRC => (bits!(field::MAC_SRC), mac_value(p.mac_src)),
        field::SRC_TYPE => (bits!(field::SRC_TYPE), v4(p.src)),
        field::DST_TYPE => (bits!(field::DST_TYPE), v4(p.dst)),
        field::ANY_PORT_SRC => optional_value(
            p.has_ports,
            absent,
            bits!(field::ANY_PORT_SRC),
            p.sport.to_be_bytes(),
        ),
        field::ANY_PORT_DST => optional_value(
            p.has_ports,
            absent,
            bits!(field::ANY_PORT_DST),
            p.dport.to_be_bytes(),
        ),
        _ => (0, 0),
    }
}

/// The trie key (prefix length, data) the classifier looks field `id` of `chain` up with.
#[inline(always)]
pub const fn lookup_key(id: u8, chain: u32, bits: u32, value: u64) -> (u32, FieldKey) {
    (
        FIELD_KEY_HEADER_BITS + bits,
        field_key6(id, chain, value_bytes(value)),
    )
}

/// Index of the lowest set bit of a non-zero word (BPF has no count-trailing-zeros): the
/// ones below it, counted without a branch (LLVM expands the population count into shifts
/// and masks). Branches here would each double the states the verifier follows, with a
/// precise index on every one.
#[inline(always)]
pub const fn lowest_bit(w: u64) -> u32 {
    (w & w.wrapping_neg()).wrapping_sub(1).count_ones() & 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_bit_of_every_single_bit_and_some_others() {
        for i in 0..64 {
            assert_eq!(lowest_bit(1 << i), i);
        }
        for w in [
            3u64,
            0b1010_0000,
            u64::MAX,
            1 << 63 | 1 << 62,
            0xdead_beef_0000,
        ] {
            assert_eq!(lowest_bit(w), w.trailing_zeros(), "{w:#x}");
        }
    }

    #[test]
    fn every_field_has_a_value_as_wide_as_the_table_says() {
        let p = PacketInfo {
            has_ports: 1,
            has_icmp: 1,
            has_tcp_flags: 1,
            ..Default::default()
        };
        let mut ids = 0u32;
        for f in SCANNED {
            let (bits, value) = packet_value(f.id, &p);
            assert_eq!(bits, f.key_bits(), "field {}", f.id);
            assert_eq!(value >> 48, 0, "field {}", f.id);
            // Nothing beyond the key's counted bits.
            assert_eq!(value & ((1u64 << (48 - bits)) - 1), 0, "field {}", f.id);
            ids |= field::bit(f.id);
        }
        assert_eq!(ids.count_ones() as usize, SCANNED.len());
        // Without the optional header: `[0]`.
        let none = PacketInfo::default();
        for f in SCANNED.iter().filter(|f| f.optional) {
            assert_eq!(packet_value(f.id, &none), (8, 0), "field {}", f.id);
        }
    }

    #[test]
    fn keys_put_values_in_network_order() {
        let p = PacketInfo {
            src: [198, 18, 0, 1],
            sport: 0x1234,
            has_ports: 1,
            len: 0x0567,
            mac_src: [1, 2, 3, 4, 5, 6],
            in_ifindex: 7,
            ..Default::default()
        };
        let key = |id| {
            let (bits, value) = packet_value(id, &p);
            lookup_key(id, 0x0102, bits, value)
        };
        assert_eq!(key(field::SRC), (56, [1, 1, 2, 198, 18, 0, 1, 0, 0]));
        assert_eq!(key(field::SPORT), (48, [4, 1, 2, 1, 0x12, 0x34, 0, 0, 0]));
        assert_eq!(key(field::LENGTH), (40, [11, 1, 2, 5, 0x67, 0, 0, 0, 0]));
        assert_eq!(key(field::MAC_SRC), (72, [14, 1, 2, 1, 2, 3, 4, 5, 6]));
        assert_eq!(key(field::IN_IFACE), (56, [6, 1, 2, 0, 0, 0, 7, 0, 0]));
        assert_eq!(key(field::TCP_FLAGS), (32, [10, 1, 2, 0, 0, 0, 0, 0, 0]));
        assert_eq!(
            lookup_key(field::SRC, 3, 32, v4([1, 2, 3, 4])).1,
            field_key(1, 3, [1, 2, 3, 4])
        );
    }
}
