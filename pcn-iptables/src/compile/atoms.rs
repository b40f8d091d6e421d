//! Atoms: the longest prefixes of a field's trie, and the bitmaps of the rules their values
//! satisfy (a walk of the prefix tree, linear in atoms and rules).

use super::interval::{Interval, Values, prefixes};
use super::types::{SRC_ZERO, Words};
use crate::model::Negatable;

/// Every constraint a rule's matches put on one field, as one: several matches on the same
/// field must all hold, so their sets (complemented where negated) are intersected.
pub(super) fn all_of(
    mut each: impl Iterator<Item = Negatable<Values>>,
    last: u32,
) -> Option<Negatable<Values>> {
    let first = each.next()?;
    let mut rest = each.peekable();
    if rest.peek().is_none() {
        return Some(first);
    }
    let set = |c: Negatable<Values>| {
        if c.negated {
            c.value.complement(last)
        } else {
            c.value
        }
    };
    let value = rest.fold(set(first), |acc, c| acc.intersect(&set(c)));
    Some(Negatable {
        value,
        negated: false,
    })
}

/// Appends an `nwords`-word bitmap with bit i set where the i-th of `bits` is.
pub(super) fn push_bits(words: &mut Vec<u64>, nwords: usize, bits: impl Iterator<Item = bool>) {
    let at = words.len();
    words.resize(at + nwords, 0);
    for (i, set) in bits.enumerate() {
        if set {
            words[at + i / 64] |= 1 << (i % 64);
        }
    }
}

pub(super) fn bitmap(nwords: usize, bits: impl Iterator<Item = bool>) -> Words {
    let mut words = Vec::with_capacity(nwords);
    push_bits(&mut words, nwords, bits);
    words
}

/// An atom of a field's trie.
pub(super) struct Atom {
    pub(super) len: u32,
    pub(super) value: u32,
    /// Its window words, in the arena.
    pub(super) at: usize,
    /// Its bitmap index in the running generation (`SRC_ZERO`: a new atom).
    pub(super) own: u32,
    /// The running generation's bitmap of its closest atom there, itself included: what its
    /// words before the window are.
    pub(super) src: u32,
}

/// The atoms of one field of one chain in a `width`-bit value space, with the `wlen` words of
/// each one's bitmap that the window's rules (`constraints`, bit i for the window's rule i)
/// decide, written to `words`. `base`: the running generation's atoms `(length, value,
/// index)`, in order; `fill`: what the words before the window are where no base atom
/// contains an atom.
///
/// The atoms are the base atoms, the prefixes of every rule's interval, and the whole space.
/// An atom's bitmap has rule i set when the atom lies inside rule i's interval (flipped by
/// `!`): since every rule's interval is a union of atoms, the longest atom containing a value
/// lies inside the interval exactly when the value does.
///
/// An atom lies inside an interval exactly when it or one of its ancestors is one of the
/// interval's prefixes, so walking the atoms as a prefix tree, each bitmap is its parent's
/// with the rules decomposed right there flipped: linear in atoms and rules, not their product.
pub(super) fn walk(
    words: &mut Vec<u64>,
    wlen: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
    base: &[(u32, u32, u32)],
    fill: u32,
) -> Vec<Atom> {
    // (first value, prefix length, rule): the rule's interval has this prefix.
    let mut decomposed: Vec<(u32, u32, usize)> = constraints
        .iter()
        .enumerate()
        .filter_map(|(rule, c)| c.as_ref().map(|c| (rule, c)))
        .flat_map(|(rule, c)| {
            c.value.intervals().iter().flat_map(move |i| {
                prefixes(*i, width)
                    .into_iter()
                    .map(move |(len, v)| (v, len, rule))
            })
        })
        .collect();
    if base.is_empty() {
        decomposed.push((0, 0, usize::MAX));
    }
    // Parents before children: by first value, then shorter prefixes first.
    decomposed.sort_unstable();
    // The root: rules without a constraint, and negated ones (nothing is inside them yet).
    let root = bitmap(
        wlen,
        constraints
            .iter()
            .map(|c| c.as_ref().is_none_or(|c| c.negated)),
    );
    let mut atoms: Vec<Atom> = Vec::with_capacity(base.len() + decomposed.len());
    // Indexes into `atoms` of the atoms containing the current one.
    let mut ancestors: Vec<usize> = Vec::new();
    let (mut b, mut d) = (0, 0);
    words.reserve((base.len() + decomposed.len()) * wlen);
    while b < base.len() || d < decomposed.len() {
        // The next atom in order, and whether the base has it.
        let next_d = decomposed.get(d).map(|&(v, l, _)| (v, l));
        let next_b = base.get(b).map(|&(l, v, _)| (v, l));
        let (value, len) = match (next_b, next_d) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (None, None) => unreachable!(),
        };
        let own = if next_b == Some((value, len)) {
            b += 1;
            base[b - 1].2
        } else {
            SRC_ZERO
        };
        let group_start = d;
        while decomposed
            .get(d)
            .is_some_and(|&(v, l, _)| (v, l) == (value, len))
        {
            d += 1;
        }
        let atom = Interval::of_prefix(value, len, width);
        while let Some(&top) = ancestors.last() {
            let t = &atoms[top];
            if atom.within(Interval::of_prefix(t.value, t.len, width)) {
                break;
            }
            ancestors.pop();
        }
        let at = words.len();
        let src = match ancestors.last() {
            Some(&parent) => {
                let p = &atoms[parent];
                words.extend_from_within(p.at..p.at + wlen);
                p.src
            }
            None => {
                words.extend_from_slice(&root);
                fill
            }
        };
        for &(_, _, rule) in decomposed[group_start..d]
            .iter()
            .filter(|d| d.2 != usize::MAX)
        {
            let bit = 1u64 << (rule % 64);
            if constraints[rule].as_ref().is_some_and(|c| c.negated) {
                words[at + rule / 64] &= !bit;
            } else {
                words[at + rule / 64] |= bit;
            }
        }
        ancestors.push(atoms.len());
        atoms.push(Atom {
            len,
            value,
            at,
            own,
            src: if own != SRC_ZERO { own } else { src },
        });
    }
    atoms
}
