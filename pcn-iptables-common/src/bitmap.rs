//! How a generation's rule bitmaps lie in its bitmap array: packed into blocks, each bitmap
//! as long as the generation's longest chain needs (`Shape`), so that a small ruleset's
//! bitmaps take a few words each instead of the 2 KiB a 16,384-rule chain needs.
//!
//! A bitmap (bit i = rule i of its chain) has a summary (bit i = word i is not zero, so that
//! the classifier reads only words that can hold a match). The `n`th bitmap of a block has
//! its words at `n * words` and its summary at `summaries + n * summary`, after every
//! bitmap's words. Words lie below `WORDS_END`, summaries from `SUMMARIES_START` on: the
//! classifier bounds each read by a mask, without a branch (see `word_at`, `summary_at`).

use crate::{MAX_WORDS, SUMMARY_WORDS};

/// Words of a block: the longest bitmap (16,384 rules) and its summary, exactly.
pub const BLOCK_WORDS: usize = MAX_WORDS + SUMMARY_WORDS;
/// Every bitmap's words lie below this (a power of two)...
pub const WORDS_END: usize = MAX_WORDS;
/// ...and every summary word from this on, to the block's end (`BLOCK_WORDS - 256`).
pub const SUMMARIES_START: usize = SUMMARY_WORDS;
const _: () = assert!(WORDS_END.is_power_of_two() && SUMMARIES_START + WORDS_END == BLOCK_WORDS);

/// Where word `at` of a block is read: `at` itself when `at < WORDS_END`.
#[inline(always)]
pub const fn word_at(at: usize) -> usize {
    at & (WORDS_END - 1)
}

/// Where summary word `at` is read: `at` itself when `SUMMARIES_START <= at < BLOCK_WORDS`.
#[inline(always)]
pub const fn summary_at(at: usize) -> usize {
    SUMMARIES_START + (at.wrapping_sub(SUMMARIES_START) & (WORDS_END - 1))
}

/// One value of the bitmap array.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Block {
    pub words: [u64; BLOCK_WORDS],
}

impl Block {
    pub const fn zero() -> Self {
        Block {
            words: [0; BLOCK_WORDS],
        }
    }
}

/// Bits of an address (`Shape::address`) that hold the bitmap's place in its block.
pub const PLACE_BITS: u32 = 9;

pub const fn block_of(address: u32) -> u32 {
    address >> PLACE_BITS
}

pub const fn place_of(address: u32) -> u32 {
    address & ((1 << PLACE_BITS) - 1)
}

/// The bitmaps of one generation: `words` words each (a power of two, at most MAX_WORDS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub words: u32,
}

impl Shape {
    /// The shape whose bitmaps hold chains of up to `rules` rules.
    pub const fn for_rules(rules: usize) -> Shape {
        let words = rules.div_ceil(64).next_power_of_two();
        Shape {
            words: if words > MAX_WORDS { MAX_WORDS } else { words } as u32,
        }
    }

    /// Summary words of each bitmap.
    pub const fn summary(self) -> u32 {
        self.words.div_ceil(64)
    }

    /// Bitmaps in a block: as many as fit, their words below WORDS_END.
    pub const fn per_block(self) -> u32 {
        let by_words = WORDS_END as u32 / self.words;
        let by_all = BLOCK_WORDS as u32 / (self.words + self.summary());
        if by_words < by_all { by_words } else { by_all }
    }

    /// Where a block's summaries start.
    pub const fn summaries(self) -> u32 {
        self.per_block() * self.words
    }

    /// The block of bitmap `index`, and its place in the block.
    pub const fn locate(self, index: u32) -> (u32, u32) {
        let per_block = self.per_block();
        (index / per_block, index % per_block)
    }

    /// Where the words and the summary of the bitmap at `place` start in its block.
    pub const fn starts(self, place: u32) -> (u32, u32) {
        (
            place * self.words,
            self.summaries() + place * self.summary(),
        )
    }

    /// Bitmap `index`'s address as the field trie and the chains hold it for the classifier:
    /// its block and its place (`block_of`, `place_of`).
    pub const fn address(self, index: u32) -> u32 {
        let (block, place) = self.locate(index);
        block << PLACE_BITS | place
    }

    /// Blocks that hold `bitmaps` bitmaps.
    pub const fn blocks(self, bitmaps: u32) -> u32 {
        bitmaps.div_ceil(self.per_block())
    }

    /// Bitmaps that `blocks` blocks hold.
    pub const fn capacity(self, blocks: u32) -> u32 {
        blocks * self.per_block()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_fit_their_chains_and_blocks() {
        for rules in [0, 1, 64, 65, 100, 1000, 1024, 1025, 10_000, 16_384] {
            let s = Shape::for_rules(rules);
            assert!(s.words as usize * 64 >= rules, "{rules}");
            assert!(s.words.is_power_of_two());
            assert!(
                s.words == 1 || (s.words as usize / 2) * 64 < rules,
                "{rules}: tight"
            );
            assert!((1 << PLACE_BITS) > s.per_block() && s.per_block() >= 1);
            // Every bitmap's words and summary lie where the classifier's masks read them.
            for place in 0..s.per_block() {
                let (w, sum) = s.starts(place);
                for x in w..w + s.words {
                    assert_eq!(word_at(x as usize), x as usize);
                }
                for x in sum..sum + s.summary() {
                    assert_eq!(summary_at(x as usize), x as usize, "{rules} {place}");
                }
                assert!(sum >= w + s.words || place < s.per_block() - 1);
            }
            let (_, last) = s.starts(s.per_block() - 1);
            assert!((last + s.summary()) as usize <= BLOCK_WORDS);
            assert!(s.capacity(s.blocks(rules as u32 + 1)) > rules as u32);
            let a = s.address(2 * s.per_block() - 1);
            assert_eq!((block_of(a), place_of(a)), (1, s.per_block() - 1));
        }
        // No bitmap length wastes more than an eighth of a block.
        for words in [1, 2, 4, 8, 16, 32, 64, 128, 256] {
            let s = Shape { words };
            assert!(
                s.per_block() * (words + s.summary()) + 32 >= BLOCK_WORDS as u32,
                "{words}"
            );
        }
    }
}
