//! The Internet checksum (RFC 1071) of the headers REJECT builds, as the kernel's csum_partial
//! and csum_fold compute it: 16-bit words read in memory order, so that the result is stored
//! as is.

/// One's complement sum of `bytes` read in memory order (as csum_partial does), unfolded;
/// an odd last byte is left out.
#[inline(always)]
pub fn sum<const N: usize>(bytes: &[u8; N], mut acc: u64) -> u64 {
    let mut i = 0;
    while i + 1 < N {
        acc += u16::from_ne_bytes([bytes[i], bytes[i + 1]]) as u64;
        i += 2;
    }
    acc
}

/// The checksum field's bytes for a sum: folded to 16 bits, complemented.
#[inline(always)]
pub fn fold(mut acc: u64) -> [u8; 2] {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    (!(acc as u16)).to_ne_bytes()
}

/// The checksum field's bytes `check` once a 16-bit word of what it covers changed from `old`
/// to `new` (RFC 1624's HC' = ~(~HC + ~m + m'), as the kernel's csum_replace2), all in memory
/// order.
#[inline(always)]
pub fn replace(check: [u8; 2], old: [u8; 2], new: [u8; 2]) -> [u8; 2] {
    let word = |b: [u8; 2]| u16::from_ne_bytes(b) as u64;
    fold((!word(check) & 0xffff) + (!word(old) & 0xffff) + word(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header of Wikipedia's "IPv4 header checksum" example: checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        assert_eq!(fold(sum(&HEADER, 0)), [0xb8, 0x61]);
        // With its checksum in, a header sums to all ones (folds to zero).
        let mut h = HEADER;
        h[10..12].copy_from_slice(&[0xb8, 0x61]);
        assert_eq!(fold(sum(&h, 0)), [0, 0]);
    }

    #[test]
    fn sums_chain_and_fold_carries() {
        let (a, b): ([u8; 10], [u8; 10]) = (
            HEADER[..10].try_into().unwrap(),
            HEADER[10..].try_into().unwrap(),
        );
        assert_eq!(fold(sum(&b, sum(&a, 0))), [0xb8, 0x61]);
        // Carries out of 16 (and 32) bits wrap around.
        assert_eq!(fold(0xffff + 1), (!1u16).to_ne_bytes());
        assert_eq!(fold(0x1_0000_0000), (!1u16).to_ne_bytes());
        assert_eq!(fold(0), [0xff, 0xff]);
        // An odd byte at the end is not summed.
        assert_eq!(sum(&[1, 2, 3], 0), u16::from_ne_bytes([1, 2]) as u64);
    }

    /// A word changed in place gives the checksum of the whole header computed anew, for
    /// every TOS byte and TTL (the words the mangle table's targets rewrite).
    #[test]
    fn a_replaced_word_gives_the_full_checksum() {
        let mut h = HEADER;
        h[10..12].copy_from_slice(&fold(sum(&HEADER, 0)));
        for at in [0, 8] {
            for v in 0..=255u8 {
                let mut n = h;
                n[at + (at == 0) as usize] = v;
                let check = replace([h[10], h[11]], [h[at], h[at + 1]], [n[at], n[at + 1]]);
                n[10..12].copy_from_slice(&[0, 0]);
                assert_eq!(check, fold(sum(&n, 0)), "byte {at}: {v}");
            }
        }
    }
}
