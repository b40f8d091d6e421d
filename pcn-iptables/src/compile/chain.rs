//! One chain's bitmaps: its rules' values per field become atoms, each with the bitmap of the
//! rules its values satisfy (`chain_bitmaps`), on the running generation's atoms when there is one.

use pcn_iptables_common::{
    ChainConfig, FIELD_KEY_HEADER_BITS, FieldKey, classifier, field, field_key6, hotdrop,
};

use super::atoms::{push_bits, walk};
use super::config::Ctx;
use super::fields::{
    self, Constraint, address, addrtype, any_port, ctstates, each, fragment, icmp, length, mac,
    ports, proto, tcp_flags, ttl,
};
use super::types::{Change, CompileError, Entry, Link, SRC_ONES, SRC_ZERO, Shift};
use crate::model::{Rule, Target};

/// A bitmap the compiler made for one chain.
pub(super) struct Made {
    /// The trie entry pointing to it (`None`: one of the chain's own bitmaps).
    pub(super) entry: Option<(FieldKey, u32)>,
    /// Which of the chain's own bitmaps (`OWN_*`), for those.
    pub(super) own: u8,
    /// The bitmap index the running generation has for it (`SRC_ZERO` if none).
    pub(super) old: u32,
    /// Where the words before `from` come from when it gets another index than `old`.
    pub(super) src: u32,
    pub(super) from: u32,
    pub(super) at: usize,
    pub(super) len: u32,
    /// The running generation looks this entry's field up in this chain.
    pub(super) running: bool,
    /// See `Write::shift`.
    pub(super) shift: Option<Shift>,
}

pub(super) const OWN_RULES: u8 = 1;
pub(super) const OWN_COUNT_ONLY: u8 = 2;
pub(super) const OWN_CHECKED: u8 = 3;

/// The running generation's view of one chain.
pub(super) struct ChainBase<'a> {
    pub(super) cfg: ChainConfig,
    /// Its trie entries (in `Entry::order`, so grouped by field).
    pub(super) entries: &'a [Entry],
}

impl ChainBase<'_> {
    fn uses(&self, id: u8) -> bool {
        self.cfg.fields & field::bit(id) != 0
    }

    fn field(&self, id: u8) -> &[Entry] {
        if !self.uses(id) {
            return &[];
        }
        let lo = self.entries.partition_point(|e| e.key[0] < id);
        let hi = self.entries.partition_point(|e| e.key[0] <= id);
        &self.entries[lo..hi]
    }
}

/// The entries of `chain` among a layout's entries, in order: found per field by binary
/// search (entries sort by field, then chain), not by a walk of every chain's.
pub(super) fn entries_of_chain(entries: &[Entry], chain: u32) -> Vec<Entry> {
    let c = (chain as u16).to_be_bytes();
    let mut out = Vec::new();
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let field = first.key[0];
        let (this, next) = rest.split_at(rest.partition_point(|e| e.key[0] == field));
        let lo = this.partition_point(|e| e.key[1..3] < c[..]);
        let hi = this.partition_point(|e| e.key[1..3] <= c[..]);
        out.extend_from_slice(&this[lo..hi]);
        rest = next;
    }
    out
}

/// Computes one chain's bitmaps as far as `change` asks (`From(0)`: whole), on the running
/// generation's view of the chain (`base`, which any other change needs). Returns the
/// chain's `fields`.
pub(super) fn chain_bitmaps(
    ctx: &Ctx,
    chain: u32,
    rules: &[Rule],
    change: Change,
    base: Option<&ChainBase>,
    made: &mut Vec<Made>,
    words: &mut Vec<u64>,
) -> Result<u32, CompileError> {
    let nwords = rules.len().div_ceil(64);
    let w = Window::of(change, rules.len());
    // Room for about as many atoms as the running generation had, and a few per new rule:
    // growing the arena copies it over and over.
    let atoms = base.map_or(0, |b| b.entries.len()) + 4 * w.rules.len() + 64;
    words.reserve(atoms * w.len + 3 * nwords);
    made.reserve(atoms + 3);
    own_bitmaps(rules, nwords, base, made, words);
    let window = &rules[w.rules];
    let mut b = Building {
        chain,
        from: w.from,
        wlen: w.len,
        // Where the words outside the window come from for entries new to a field: all ones
        // (the rules outside do not look at the field; no word is outside a whole build).
        fill: if w.len < nwords || w.shift.is_some() {
            SRC_ONES
        } else {
            SRC_ZERO
        },
        shift: w.shift,
        base,
        made,
        words,
        cut: window
            .iter()
            .map(|r| fields::hotdrops(r) & hotdrop::KEYED != 0)
            .collect(),
    };
    // Value fields and each rule's constraint; their width in bits, and whether they are keyed
    // under `[1]` with `[0]` for packets without the header, are the field table's.
    let value_fields: [(u8, Vec<Constraint>); 15] = [
        (field::SRC, each(window, |r| address(r, true))?),
        (field::DST, each(window, |r| address(r, false))?),
        (field::PROTO, each(window, proto)?),
        (field::CTSTATE, each(window, ctstates)?),
        (field::SPORT, each(window, |r| ports(r, true))?),
        (field::DPORT, each(window, |r| ports(r, false))?),
        (field::ANY_PORT_SRC, each(window, any_port)?),
        (field::ANY_PORT_DST, each(window, any_port)?),
        (field::ICMP, each(window, icmp)?),
        (field::TCP_FLAGS, each(window, tcp_flags)?),
        (field::LENGTH, each(window, length)?),
        (field::TTL, each(window, ttl)?),
        (field::FRAGMENT, each(window, fragment)?),
        (
            field::SRC_TYPE,
            each(window, |r| addrtype(r, true, ctx.address_types))?,
        ),
        (
            field::DST_TYPE,
            each(window, |r| addrtype(r, false, ctx.address_types))?,
        ),
    ];
    let mut fields = 0;
    for (id, constraints) in value_fields {
        if b.value_field(id, &constraints) {
            fields |= field::bit(id);
        }
    }
    if b.mac_field(window) {
        fields |= field::bit(field::MAC_SRC);
    }
    for id in [field::IN_IFACE, field::OUT_IFACE] {
        if b.iface_field(id, window, ctx.links) {
            fields |= field::bit(id);
        }
    }
    Ok(fields)
}

/// The rules of a chain whose bits a change computes, and which words they make.
struct Window {
    rules: std::ops::Range<usize>,
    from: usize,
    len: usize,
    shift: Option<Shift>,
}

impl Window {
    fn of(change: Change, rules: usize) -> Window {
        let nwords = rules.div_ceil(64);
        let words = |first: usize, end: usize| {
            let from = (first / 64).min(nwords);
            let to = end.div_ceil(64).max(from);
            (from * 64..(to * 64).min(rules), from, to - from)
        };
        let (rules, from, len) = match change {
            Change::From(k) => words(k, rules),
            Change::Replaced { first, end } => words(first, end),
            Change::Shifted { at, insert } => {
                let old = if insert { rules - 1 } else { rules + 1 };
                return Window {
                    rules: if insert { at..at + 1 } else { at..at },
                    from: at / 64,
                    len: insert as usize,
                    shift: Some(Shift {
                        rule: at as u32,
                        insert,
                        old_words: old.div_ceil(64) as u32,
                        words: nwords as u32,
                    }),
                };
            }
        };
        Window {
            rules,
            from,
            len,
            shift: None,
        }
    }
}

/// The chain's own bitmaps, whole: its rules, those that only count, those with a check of
/// their own (a bucket, the connection's tuples).
fn own_bitmaps(
    rules: &[Rule],
    nwords: usize,
    base: Option<&ChainBase>,
    made: &mut Vec<Made>,
    words: &mut Vec<u64>,
) {
    let own = [
        (OWN_RULES, base.map(|b| b.cfg.rules)),
        (OWN_COUNT_ONLY, base.map(|b| b.cfg.count_only)),
        (OWN_CHECKED, base.map(|b| b.cfg.checked)),
    ];
    for (kind, old) in own {
        let at = words.len();
        match kind {
            OWN_RULES => push_bits(words, nwords, rules.iter().map(|_| true)),
            // The scan counts these as it goes instead of stopping at them.
            // LOG, MARK and the header's rewrites, like no target, let the packet go on to
            // the next rule.
            OWN_COUNT_ONLY => push_bits(
                words,
                nwords,
                rules
                    .iter()
                    .map(|r| r.target.as_ref().is_none_or(Target::goes_on)),
            ),
            _ => push_bits(
                words,
                nwords,
                rules.iter().map(|r| {
                    r.matches.iter().any(fields::checked)
                        || fields::masked(r).iter().any(Option::is_some)
                }),
            ),
        }
        made.push(Made {
            entry: None,
            own: kind,
            old: old.unwrap_or(SRC_ZERO),
            src: SRC_ZERO,
            from: 0,
            at,
            len: nwords as u32,
            running: false,
            shift: None,
        });
    }
}

/// One chain's field bitmaps being built: words `from..from + wlen` of each.
struct Building<'a, 'b> {
    chain: u32,
    from: usize,
    wlen: usize,
    /// Where the words outside the window come from for an entry new to a field.
    fill: u32,
    shift: Option<Shift>,
    base: Option<&'a ChainBase<'b>>,
    made: &'a mut Vec<Made>,
    words: &'a mut Vec<u64>,
    /// Which rules of the window hold a tcp, udp or icmp match, which drops a packet cut
    /// short for it (`hotdrop::KEYED`).
    cut: Vec<bool>,
}

impl<'a> Building<'a, '_> {
    /// Notes a trie entry of field `id` for `value` (its first `len` bits) whose bitmap's
    /// words start at `at`.
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, id: u8, len: u32, value: [u8; 6], at: usize, old: u32, src: u32, run: bool) {
        let key = field_key6(id, self.chain, value);
        self.made.push(Made {
            entry: Some((key, FIELD_KEY_HEADER_BITS + len)),
            own: 0,
            old,
            src: if old != SRC_ZERO { old } else { src },
            from: self.from as u32,
            at,
            len: self.wlen as u32,
            running: run,
            shift: self.shift,
        });
    }

    /// Pushes the window's bits for `bits` and returns where they start.
    fn push(&mut self, bits: impl Iterator<Item = bool>) -> usize {
        let at = self.words.len();
        push_bits(self.words, self.wlen, bits);
        at
    }

    /// The running generation's entries of field `id`, and whether it looks the field up.
    fn running(&self, id: u8) -> (&'a [Entry], bool) {
        let base = self.base;
        (
            base.map_or(&[][..], |b| b.field(id)),
            base.is_some_and(|b| b.uses(id)),
        )
    }

    /// A value field (addresses, protocol, ports, ...): its atoms. Whether the chain uses it.
    fn value_field(&mut self, id: u8, constraints: &[Constraint]) -> bool {
        let classifier::Field {
            width,
            optional: keyed,
            ..
        } = classifier::spec(id);
        let (entries, running) = self.running(id);
        if !running && constraints.iter().all(Option::is_none) {
            return false;
        }
        let lead = keyed as u32;
        let mut atoms_base = Vec::with_capacity(entries.len());
        let (mut missing, mut cut) = (SRC_ZERO, SRC_ZERO);
        for e in entries {
            let v = &e.key[3 + lead as usize..];
            if keyed && e.key[3] == 0 {
                missing = e.index;
                continue;
            }
            if keyed && e.key[3] == hotdrop::CUT_KEY {
                cut = e.index;
                continue;
            }
            let value = match width {
                8 => v[0] as u32,
                16 => u16::from_be_bytes([v[0], v[1]]) as u32,
                _ => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            };
            let len = e.prefix_len as u32 - FIELD_KEY_HEADER_BITS - lead * 8;
            atoms_base.push((len, value, e.index));
        }
        let fill = self.fill;
        if keyed {
            // Packets without this header look up `[0]`: only rules without a constraint
            // on the field match them.
            let at = self.push(constraints.iter().map(Option::is_none));
            self.add(id, 8, [0; 6], at, missing, fill, running);
            // Packets cut short for tcp, udp or icmp look up `[CUT_KEY]`: those rules too,
            // which drop them (`hotdrop`).
            let bits: Vec<bool> = (constraints.iter().zip(&self.cut))
                .map(|(c, cut)| c.is_none() || *cut)
                .collect();
            let at = self.push(bits.into_iter());
            let key = [hotdrop::CUT_KEY, 0, 0, 0, 0, 0];
            self.add(id, 8, key, at, cut, fill, running);
        }
        for atom in walk(self.words, self.wlen, constraints, width, &atoms_base, fill) {
            let bytes = &atom.value.to_be_bytes()[4 - width as usize / 8..];
            let mut value = [0u8; 6];
            let lead_bytes: &[u8] = if keyed { &[1] } else { &[] };
            for (slot, b) in value.iter_mut().zip(lead_bytes.iter().chain(bytes)) {
                *slot = *b;
            }
            let len = lead * 8 + atom.len;
            self.add(id, len, value, atom.at, atom.own, atom.src, running);
        }
        true
    }

    /// `--mac-source`: a default entry, one per address named, and all zeros for frames
    /// without an Ethernet header. Whether the chain uses it.
    fn mac_field(&mut self, window: &[Rule]) -> bool {
        let id = field::MAC_SRC;
        let macs: Vec<_> = window.iter().map(mac).collect();
        let (entries, running) = self.running(id);
        if !running && macs.iter().all(|m| m.is_empty()) {
            return false;
        }
        let old = |len: u32, addr: [u8; 6]| {
            entries
                .iter()
                .find(|e| e.prefix_len as u32 == FIELD_KEY_HEADER_BITS + len && e.key[3..] == addr)
                .map_or(SRC_ZERO, |e| e.index)
        };
        let fill = self.fill;
        // The default entry: addresses no rule names.
        let default = old(0, [0; 6]);
        let at = self.push(macs.iter().map(|m| m.iter().all(|m| m.negated)));
        self.add(id, 0, [0; 6], at, default, fill, running);
        let mut named: Vec<[u8; 6]> = macs.iter().flatten().map(|m| m.value).collect();
        for e in entries
            .iter()
            .filter(|e| e.prefix_len as u32 > FIELD_KEY_HEADER_BITS)
        {
            let mut addr = [0u8; 6];
            addr.copy_from_slice(&e.key[3..]);
            named.push(addr);
        }
        named.sort_unstable();
        named.dedup();
        named.retain(|a| *a != [0; 6]);
        // A new address found the default entry before.
        let src = if default != SRC_ZERO { default } else { fill };
        for addr in named {
            // Every `--mac-source` of a rule must hold.
            let at = self.push(
                macs.iter()
                    .map(|m| m.iter().all(|m| (m.value == addr) != m.negated)),
            );
            self.add(id, 48, addr, at, old(48, addr), src, running);
        }
        // All zeros is what the data plane reads where there is no Ethernet header
        // (OUTPUT, lo): xt_mac matches nothing there, `!` or not.
        let at = self.push(macs.iter().map(Vec::is_empty));
        self.add(id, 48, [0; 6], at, old(48, [0; 6]), fill, running);
        true
    }

    /// `-i` or `-o`: one exact ifindex entry per interface, under the default entry for
    /// interfaces unknown at compile time. Whether the chain uses it.
    fn iface_field(&mut self, id: u8, window: &[Rule], links: &[Link]) -> bool {
        let constraints: Vec<_> = window
            .iter()
            .map(|r| {
                if id == field::IN_IFACE {
                    &r.in_iface
                } else {
                    &r.out_iface
                }
            })
            .collect();
        let (entries, running) = self.running(id);
        if !running && constraints.iter().all(|c| c.is_none()) {
            return false;
        }
        let old = |len: u32, i: [u8; 4]| {
            entries
                .iter()
                .find(|e| e.prefix_len as u32 == FIELD_KEY_HEADER_BITS + len && e.key[3..7] == i)
                .map_or(SRC_ZERO, |e| e.index)
        };
        let fill = self.fill;
        // The default entry stands for interfaces unknown at compile time, named "" for
        // matching, so only `+` and negated names match them.
        let unknown = std::iter::once((None, ""));
        for (ifindex, name) in
            unknown.chain(links.iter().map(|l| (Some(l.ifindex), l.name.as_str())))
        {
            let at = self.push(constraints.iter().map(|c| match c {
                None => true,
                Some(c) => c.value.matches(name) != c.negated,
            }));
            let i = ifindex.unwrap_or_default().to_be_bytes();
            let len = if ifindex.is_some() { 32 } else { 0 };
            self.add(
                id,
                len,
                [i[0], i[1], i[2], i[3], 0, 0],
                at,
                old(len, i),
                fill,
                running,
            );
        }
        true
    }
}
