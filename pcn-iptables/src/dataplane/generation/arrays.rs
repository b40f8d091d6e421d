//! A generation's arrays (chains, actions, bitmaps) and field trie: made, mapped, written.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context as _, Result};
use pcn_iptables_common::{Action, BLOCK_WORDS, Block, ChainConfig, FieldKey, Shape};
use rustc_hash::FxHashMap;

use super::slots::{Slots, id_of};
use crate::compile::{self, Entry, Program, SRC_ONES, SRC_ZERO};
use crate::dataplane::sys;

/// Room for `n` items and some to grow into, so that later changes rewrite the maps in place:
/// a change that outgrows them makes new arrays, whose store into the maps of maps waits for
/// an RCU grace period (10-20 ms here), as a kube-proxy sync adding a few services would.
pub(super) fn headroom(n: usize) -> usize {
    n + n / 8 + 1024
}

/// A new array map of `capacity` values like `T`, mapped.
pub(super) fn new_array<T>(name: &str, capacity: usize) -> Result<(OwnedFd, sys::Mapping)> {
    let fd = new_map::<T>(name, capacity)?;
    let size = std::mem::size_of::<T>() * capacity.max(1);
    let mapping = sys::Mapping::new(fd.as_fd(), size).with_context(|| format!("mapping {name}"))?;
    Ok((fd, mapping))
}

/// A new array map of `capacity` values like `T`.
fn new_map<T>(name: &str, capacity: usize) -> Result<OwnedFd> {
    const { assert!(std::mem::size_of::<T>().is_multiple_of(8)) };
    sys::map_create(
        name,
        sys::MAP_TYPE_ARRAY,
        4,
        std::mem::size_of::<T>() as u32,
        capacity.max(1) as u32,
        sys::INNER_ARRAY,
    )
    .with_context(|| format!("creating map {name}"))
}

/// Maps all of an existing array of `T`.
pub(super) fn map_array<T>(fd: &OwnedFd) -> Result<(sys::MapInfo, sys::Mapping)> {
    let info = sys::map_info(fd.as_fd())?;
    let size = std::mem::size_of::<T>();
    if info.value_size as usize != size {
        anyhow::bail!("map {} holds {}-byte values", info.id, info.value_size);
    }
    let mapping = sys::Mapping::new(fd.as_fd(), size * info.max_entries.max(1) as usize)?;
    Ok((info, mapping))
}

/// Writes `items` at the start of a mapping of an array of `T`.
pub(super) fn put<T: Copy>(mapping: &mut sys::Mapping, items: &[T]) {
    assert!(std::mem::size_of_val(items) <= mapping.len());
    // SAFETY: the mapping holds at least items.len() values of T (checked above), aligned
    // (page base, 8-byte multiple sizes).
    unsafe {
        std::ptr::copy_nonoverlapping(items.as_ptr(), mapping.as_ptr().cast::<T>(), items.len())
    };
}

/// Writes `ranges` of a generation's actions into its array, the kept ones read from the
/// running generation's (`running`: its map id). Only the pages written and read are mapped:
/// mapping costs by the page, and a change writes few actions (`Actions::to_write`).
pub(super) fn put_actions(
    fd: BorrowedFd,
    actions: &compile::Actions,
    ranges: &[[u32; 2]],
    running: Option<u32>,
) -> Result<()> {
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return Ok(());
    };
    let mut out = Window::<Action>::map(fd, [first[0], last[1]])?;
    let read = match actions.sources(ranges) {
        None => None,
        Some(span) => {
            let id = running.context("kept actions without a running generation")?;
            let fd = sys::map_by_id(id).context("opening the running actions")?;
            Some(Window::<Action>::map(fd.as_fd(), span)?)
        }
    };
    let read = read.as_ref().map_or((&[][..], 0), |w| (w.values(), w.from));
    let from = out.from;
    actions.write(ranges, (out.values_mut(), from), read);
    Ok(())
}

/// Values `from..to` of an array of `T`, mapped: the pages that hold them.
struct Window<T> {
    mapping: sys::Mapping,
    /// Bytes from the mapping's start to value `from`.
    skip: usize,
    from: usize,
    len: usize,
    _values: std::marker::PhantomData<T>,
}

impl<T> Window<T> {
    fn map(fd: BorrowedFd, [from, to]: [u32; 2]) -> Result<Self> {
        let info = sys::map_info(fd)?;
        let size = std::mem::size_of::<T>();
        if info.value_size as usize != size || to > info.max_entries || from > to {
            anyhow::bail!("map {} has no values {from}..{to} of {size} bytes", info.id);
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let start = from as usize * size;
        let offset = start / page * page;
        let mapping = sys::Mapping::at(fd, offset, to as usize * size - offset)?;
        Ok(Window {
            mapping,
            skip: start - offset,
            from: from as usize,
            len: (to - from) as usize,
            _values: std::marker::PhantomData,
        })
    }

    fn values(&self) -> &[T] {
        // SAFETY: the mapping holds `len` values from `skip` on (checked against the map),
        // 8-byte aligned (page offset, 8-byte multiple sizes).
        unsafe { std::slice::from_raw_parts(self.mapping.as_ptr().add(self.skip).cast(), self.len) }
    }

    fn values_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `values`; the window is ours alone.
        unsafe {
            std::slice::from_raw_parts_mut(self.mapping.as_ptr().add(self.skip).cast(), self.len)
        }
    }
}

/// Blocks to make for `n` bitmaps of this shape: room for n/16 + 240 more bitmaps (as the
/// other arrays have), times as many as fit in the room one 16,384-rule bitmap takes, up to
/// 16 times: short bitmaps cost little, and a change that outgrows the running array (a
/// kube-proxy sync's new addresses) is a full build, two RCU grace periods long.
pub(super) fn bitmap_headroom(n: usize, shape: Shape) -> u32 {
    let extra = (n / 16 + 240) * shape.per_block().min(16) as usize;
    shape.blocks((n + extra) as u32)
}

/// A mapped bitmap array, its bitmaps packed in blocks by `shape` (see
/// `pcn_iptables_common::bitmap`).
pub(super) struct Packed {
    words: *mut u64,
    len: usize,
    shape: Shape,
}

impl Packed {
    pub(super) fn new(mapping: &sys::Mapping, shape: Shape) -> Self {
        Packed {
            words: mapping.as_ptr().cast::<u64>(),
            len: mapping.len() / 8,
            shape,
        }
    }

    /// Bitmap `i`: its summary and its words.
    ///
    /// # Safety
    /// Nobody else reads or writes bitmap `i` meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn bitmap(&self, i: u32) -> (&mut [u64], &mut [u64]) {
        let (block, place) = self.shape.locate(i);
        let (words, summary) = self.shape.starts(place);
        let base = block as usize * BLOCK_WORDS;
        assert!(
            base + BLOCK_WORDS <= self.len,
            "bitmap {i} is past the array"
        );
        let part = |at: u32, len: u32| {
            // SAFETY: inside the mapping's block (checked), 8-byte aligned; the summary and
            // the words do not overlap (`Shape::starts`); exclusive by contract.
            unsafe {
                std::slice::from_raw_parts_mut(self.words.add(base + at as usize), len as usize)
            }
        };
        (
            part(summary, self.shape.summary()),
            part(words, self.shape.words),
        )
    }
}

/// Sets the summary bits of words `lo..hi` of a bitmap from its words.
pub(super) fn summarize(summary: &mut [u64], words: &[u64], lo: usize, hi: usize) {
    for x in lo..hi.min(words.len()) {
        let bit = 1u64 << (x % 64);
        if words[x] != 0 {
            summary[x / 64] |= bit;
        } else {
            summary[x / 64] &= !bit;
        }
    }
}

/// The running generation's bitmaps, as far as a change reads them: all of them mapped, or
/// the few it needs copied out (mapping a big array, and unmapping it, costs more than
/// reading a few blocks one by one).
pub(super) enum Active {
    Mapped(sys::Mapping, Packed),
    /// Bitmaps by index: words, then summary.
    Copied(FxHashMap<u32, Box<[u64]>>, Shape),
}

impl Active {
    /// `needs`: the indexes that will be read.
    pub(super) fn new(
        fd: &OwnedFd,
        info: &sys::MapInfo,
        needs: &[u32],
        shape: Shape,
    ) -> Result<Self> {
        let mut blocks: Vec<u32> = needs.iter().map(|&i| shape.locate(i).0).collect();
        blocks.sort_unstable();
        blocks.dedup();
        if blocks.len() > 64 || blocks.len() * 16 > info.max_entries as usize {
            return Active::mapped(fd, shape);
        }
        let mut read: FxHashMap<u32, Box<Block>> = FxHashMap::default();
        for b in blocks {
            read.insert(b, read_block(fd, info, b)?);
        }
        let copied = needs
            .iter()
            .map(|&i| {
                let (b, place) = shape.locate(i);
                (i, gather(&read[&b], shape, place))
            })
            .collect();
        Ok(Active::Copied(copied, shape))
    }

    pub(super) fn mapped(fd: &OwnedFd, shape: Shape) -> Result<Self> {
        let (_, m) = map_array::<Block>(fd)?;
        let packed = Packed::new(&m, shape);
        Ok(Active::Mapped(m, packed))
    }

    /// The words of bitmap `i` (none: not read, all zeros).
    pub(super) fn words(&self, i: u32) -> Option<&[u64]> {
        match self {
            // SAFETY: only read, and the running generation does not write its bitmaps.
            Active::Mapped(_, p) => Some(&*unsafe { p.bitmap(i) }.1),
            Active::Copied(c, s) => c.get(&i).map(|b| &b[..s.words as usize]),
        }
    }

    /// The running generation's bitmap `to` becomes a copy of its bitmap `from`.
    pub(super) fn copy(
        &mut self,
        fd: &OwnedFd,
        info: &sys::MapInfo,
        from: u32,
        to: u32,
    ) -> Result<()> {
        match self {
            Active::Mapped(_, p) => {
                // SAFETY: distinct bitmaps; the running generation does not read `to` yet.
                unsafe {
                    let (from_summary, from_words) = p.bitmap(from);
                    let (summary, words) = p.bitmap(to);
                    summary.copy_from_slice(from_summary);
                    words.copy_from_slice(from_words);
                }
            }
            Active::Copied(c, shape) => {
                let shape = *shape;
                let stride = (shape.words + shape.summary()) as usize;
                let both: Box<[u64]> = c
                    .get(&from)
                    .map_or_else(|| vec![0; stride].into(), |b| b.clone());
                let (b, place) = shape.locate(to);
                let mut block = read_block(fd, info, b)?;
                let (words, summary) = shape.starts(place);
                let (w, s) = both.split_at(shape.words as usize);
                block.words[words as usize..][..w.len()].copy_from_slice(w);
                block.words[summary as usize..][..s.len()].copy_from_slice(s);
                // SAFETY: a Block is plain words, BLOCK_SIZE bytes, the map's value size.
                let bytes = unsafe {
                    std::slice::from_raw_parts((&*block as *const Block).cast::<u8>(), BLOCK_SIZE)
                };
                sys::map_update(fd.as_fd(), &b.to_ne_bytes(), bytes, 0)?;
                c.insert(to, both);
            }
        }
        Ok(())
    }
}

/// The words, then the summary, of the bitmap at `place` of a block.
fn gather(block: &Block, shape: Shape, place: u32) -> Box<[u64]> {
    let (words, summary) = shape.starts(place);
    let words = &block.words[words as usize..][..shape.words as usize];
    let summary = &block.words[summary as usize..][..shape.summary() as usize];
    [words, summary].concat().into()
}

/// Block `b` of a bitmap array, read.
fn read_block(fd: &OwnedFd, info: &sys::MapInfo, b: u32) -> Result<Box<Block>> {
    if b >= info.max_entries {
        anyhow::bail!("bitmap block {b} is past the running generation's array");
    }
    let mut block = Box::new(Block::zero());
    // SAFETY: a Block is plain words, BLOCK_SIZE bytes, the map's value size.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut((&mut *block as *mut Block).cast::<u8>(), BLOCK_SIZE)
    };
    sys::map_lookup(fd.as_fd(), &b.to_ne_bytes(), bytes)?;
    Ok(block)
}

pub(super) const BLOCK_SIZE: usize = std::mem::size_of::<Block>();

/// For each write, the words to write: `(lo, hi)` around the computed ones, of `words`. A
/// bitmap new at its index takes every other word from its source; one in place, those the
/// slot lags behind the running generation by (`behind`).
pub(super) fn extent(w: &compile::Write, behind: &[(u32, u32)], words: usize) -> (usize, usize) {
    let from = w.from as usize;
    let end = w.end() as usize;
    if w.whole || w.src != w.index {
        return (0, words.max(end));
    }
    match behind.get(w.index as usize) {
        Some(&(f, t)) if f != u32::MAX => ((f as usize).min(from), (t as usize).max(end)),
        _ => (from, end),
    }
}

/// The running generation's bitmaps that writing the program over `behind` reads.
pub(super) fn active_needs(program: &Program, behind: &[(u32, u32)]) -> Vec<u32> {
    let words = program.layout.words as usize;
    let mut needs = Vec::new();
    let mut written = vec![false; behind.len()];
    for w in &program.writes {
        if let Some(x) = written.get_mut(w.index as usize) {
            *x = true;
        }
        if w.whole {
            continue;
        }
        let (lo, hi) = extent(w, behind, words);
        if (lo < w.from as usize || hi > w.end() as usize || w.shift.is_some()) && w.src < SRC_ONES
        {
            needs.push(w.src);
        }
    }
    for (i, &(f, _)) in behind.iter().enumerate() {
        if f != u32::MAX && !written[i] {
            needs.push(i as u32);
        }
    }
    if let Some(updates) = &program.updates {
        needs.extend(updates.iter().filter(|u| u.running).map(|u| u.src));
    }
    needs.sort_unstable();
    needs.dedup();
    needs
}

/// Writes the program's bitmaps into `dst`, whose bitmaps equal those of `active` (the
/// running generation) except for words `from..to` of the bitmaps in `behind` (dense by
/// index, `(u32::MAX, 0)` where equal).
///
/// # Safety
/// `dst` holds `program.layout.next_index` bitmaps, and nobody else writes them meanwhile.
pub(super) unsafe fn write_bitmaps(
    dst: &Packed,
    active: Option<&Active>,
    program: &Program,
    behind: &[(u32, u32)],
) {
    let nwords = dst.shape.words as usize;
    let mut written = vec![false; behind.len()];
    // A bitmap's source, found once for all its words.
    let source = |src: u32| -> (u64, Option<&[u64]>) {
        match src {
            SRC_ZERO => (0, None),
            SRC_ONES => (u64::MAX, None),
            s => (0, active.and_then(|a| a.words(s))),
        }
    };
    let word = |(fixed, words): (u64, Option<&[u64]>), x: usize| words.map_or(fixed, |w| w[x]);
    for w in &program.writes {
        // SAFETY: the caller vouches for the index.
        let (summary, words) = unsafe { dst.bitmap(w.index) };
        if let Some(x) = written.get_mut(w.index as usize) {
            *x = true;
        }
        let (from, end) = (w.from as usize, w.end() as usize);
        let (lo, hi) = extent(w, behind, nwords);
        let src = source(w.src);
        fill(words, lo..from, |x| word(src, x));
        match w.shift {
            Some(shift) => {
                let bit = program.words_of(w).first().copied().unwrap_or(0);
                fill(words, from..end, |x| shift.word(x, |y| word(src, y), bit));
            }
            None => words[from..end].copy_from_slice(program.words_of(w)),
        }
        if w.whole {
            words[end..].fill(0);
        } else {
            // In place, the running generation's words; else the source's.
            fill(words, end..hi, |x| word(src, x));
        }
        summarize(summary, words, lo, hi);
    }
    // What the previous change wrote and this one does not: as the running generation has it.
    for (i, &(f, t)) in behind.iter().enumerate() {
        if f == u32::MAX || written[i] {
            continue;
        }
        // SAFETY: as above.
        let (summary, words) = unsafe { dst.bitmap(i as u32) };
        let src = source(i as u32);
        fill(words, f as usize..(t as usize).min(nwords), |x| {
            word(src, x)
        });
        summarize(summary, words, f as usize, t as usize);
    }
}

/// Sets words `range` of a bitmap to `word(x)` (none if the range is empty).
fn fill(words: &mut [u64], range: std::ops::Range<usize>, word: impl Fn(usize) -> u64) {
    let range = range.start.min(range.end)..range.end;
    for (x, w) in range.clone().zip(&mut words[range]) {
        *w = word(x);
    }
}

/// What a program changes against the running generation, as `[index, from, to]` (see
/// `state::Slot::delta`).
pub(super) fn delta_of(program: &Program) -> Vec<[u32; 3]> {
    program
        .writes
        .iter()
        .map(|w| {
            [
                w.index,
                if w.src == w.index { w.from } else { 0 },
                if w.whole || w.src != w.index {
                    program.layout.words
                } else {
                    w.end()
                },
            ]
        })
        .collect()
}

/// A new field trie with room for `entries` (and some), holding them if `fill`.
pub(super) fn new_trie(entries: &[Entry], fill: bool, shape: Shape) -> Result<OwnedFd> {
    let fd = sys::map_create(
        "FIELDS",
        sys::MAP_TYPE_LPM_TRIE,
        TRIE_KEY as u32,
        4,
        // Memory goes per entry: room to grow costs nothing.
        (entries.len() * 4).max(1 << 16) as u32,
        sys::F_NO_PREALLOC,
    )
    .context("creating map FIELDS")?;
    if fill {
        trie_update(fd.as_fd(), entries, shape).context("filling the field trie")?;
    }
    Ok(fd)
}

pub(super) const TRIE_KEY: usize = 4 + std::mem::size_of::<FieldKey>();

/// Sets `entries` in a field trie, their bitmaps by address (`Shape::address`).
pub(super) fn trie_update(
    fd: BorrowedFd<'_>,
    entries: &[Entry],
    shape: Shape,
) -> std::io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(entries.len() * TRIE_KEY);
    let mut values = Vec::with_capacity(entries.len() * 4);
    for e in entries {
        keys.extend_from_slice(&(e.prefix_len as u32).to_ne_bytes());
        keys.extend_from_slice(&e.key);
        values.extend_from_slice(&shape.address(e.index).to_ne_bytes());
    }
    match sys::map_update_batch(fd, &keys, &values, entries.len() as u32) {
        // No batch updates for tries on this kernel: one at a time.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
            for (key, value) in keys.chunks_exact(TRIE_KEY).zip(values.chunks_exact(4)) {
                sys::map_update(fd, key, value, 0)?;
            }
            Ok(())
        }
        r => r,
    }
}

/// The chains as the classifier reads them: their own bitmaps by address (`Shape::address`),
/// and an epoch of their own, which no other generation has (a random 64-bit number), so that
/// flows cached by an older one are looked at again: every write of a generation's chains, in
/// place too, goes through here.
/// `PCN_IPTABLES_FLOW_CACHE=off` leaves the flow cache out (for the benchmarks' first-packet
/// cost).
pub(super) fn loaded(chains: &[ChainConfig], shape: Shape) -> Vec<ChainConfig> {
    use std::hash::{BuildHasher, Hasher};
    let epoch = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let off = std::env::var_os("PCN_IPTABLES_FLOW_CACHE").is_some_and(|v| v == "off");
    chains
        .iter()
        .map(|c| ChainConfig {
            epoch,
            flags: if off {
                c.flags & !pcn_iptables_common::chain_flag::CACHEABLE
            } else {
                c.flags
            },
            bitmap_words: shape.words,
            bitmap_summaries: shape.summaries(),
            rules: shape.address(c.rules),
            count_only: shape.address(c.count_only),
            checked: shape.address(c.checked),
            ..*c
        })
        .collect()
}

/// A generation's arrays: chains, actions, bitmaps.
pub(super) struct Arrays {
    pub(super) chains: OwnedFd,
    pub(super) actions: OwnedFd,
    pub(super) bitmaps: OwnedFd,
}

impl Arrays {
    /// The arrays as a slot of the outer maps takes them, with the field trie `trie`
    /// (`None`: the slot keeps its own).
    pub(super) fn slot<'a>(&'a self, trie: Option<&'a OwnedFd>) -> Slots<'a> {
        [
            Some(self.chains.as_fd()),
            Some(self.actions.as_fd()),
            trie.map(AsFd::as_fd),
            Some(self.bitmaps.as_fd()),
        ]
    }

    /// The arrays' ids and the field trie's, `trie`, in the outer maps' order.
    pub(super) fn ids(&self, trie: u32) -> Result<[u32; 4]> {
        Ok([
            id_of(&self.chains)?,
            id_of(&self.actions)?,
            trie,
            id_of(&self.bitmaps)?,
        ])
    }
}

/// New arrays for `program`, and what fills them with its full build (chains and actions
/// are written at once; the bitmaps take longer).
pub(super) fn new_arrays(program: &Program) -> Result<(Arrays, impl FnOnce(&Program) + Send)> {
    let (arrays, m) = new_arrays_mapped(program, None)?;
    Ok((arrays, move |p: &Program| {
        // SAFETY: a new map sized for next_index bitmaps, ours alone; no active one is read.
        unsafe { write_bitmaps(&Packed::new(&m, shape(p)), None, p, &[]) };
    }))
}

/// New arrays for `program`, chains and actions written (the kept ones from the running
/// generation's, `running`: its map id), the bitmap array mapped.
pub(super) fn new_arrays_mapped(
    program: &Program,
    running: Option<u32>,
) -> Result<(Arrays, sys::Mapping)> {
    let (chains, mut m) = new_array::<ChainConfig>("CHAINS", headroom(program.chains.len()))?;
    put(&mut m, &loaded(&program.chains, shape(program)));
    let actions = new_map::<Action>("ACTIONS", headroom(program.actions.len()))?;
    let all = program.actions.to_write(None);
    put_actions(actions.as_fd(), &program.actions, &all, running)?;
    let blocks = bitmap_headroom(program.layout.next_index as usize, shape(program));
    let (bitmaps, m) = new_array::<Block>("BITMAPS", blocks as usize)?;
    Ok((
        Arrays {
            chains,
            actions,
            bitmaps,
        },
        m,
    ))
}

/// The shape of a program's bitmaps.
pub(super) fn shape(p: &Program) -> Shape {
    Shape {
        words: p.layout.words,
    }
}
