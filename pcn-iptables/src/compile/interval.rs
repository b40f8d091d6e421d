//! Value intervals of a packet field and their decomposition into trie prefixes.

/// An inclusive range of a field's values (an address block, a port range, a protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    pub first: u32,
    pub last: u32,
}

impl Interval {
    #[cfg(test)]
    pub fn single(v: u32) -> Self {
        Interval { first: v, last: v }
    }

    /// The values of the `len`-bit prefix `value` in a `width`-bit space.
    pub fn of_prefix(value: u32, len: u32, width: u32) -> Self {
        let span = if width - len >= 32 {
            u32::MAX
        } else {
            (1u32 << (width - len)) - 1
        };
        Interval {
            first: value,
            last: value | span,
        }
    }

    pub fn within(self, outer: Interval) -> bool {
        outer.first <= self.first && self.last <= outer.last
    }
}

/// A set of values: disjoint intervals, merged where they touch, so that a prefix lies inside
/// the set exactly when it lies inside one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values(Vec<Interval>);

impl Values {
    pub fn new(mut intervals: Vec<Interval>) -> Self {
        intervals.sort_unstable_by_key(|i| i.first);
        let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
        for i in intervals {
            match merged.last_mut() {
                Some(last) if i.first as u64 <= last.last as u64 + 1 => {
                    last.last = last.last.max(i.last)
                }
                _ => merged.push(i),
            }
        }
        Values(merged)
    }

    /// The values of 0..=`last` not in the set.
    pub fn complement(&self, last: u32) -> Values {
        let mut out = Vec::new();
        let mut next = 0u64;
        for i in &self.0 {
            if (i.first as u64) > next {
                out.push(Interval {
                    first: next as u32,
                    last: i.first - 1,
                });
            }
            next = i.last as u64 + 1;
        }
        if next <= last as u64 {
            out.push(Interval {
                first: next as u32,
                last,
            });
        }
        Values(out)
    }

    pub fn intersect(&self, other: &Values) -> Values {
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                let (first, last) = (a.first.max(b.first), a.last.min(b.last));
                if first <= last {
                    out.push(Interval { first, last });
                }
            }
        }
        Values::new(out)
    }

    #[cfg(test)]
    pub fn contains(&self, atom: Interval) -> bool {
        self.0.iter().any(|i| atom.within(*i))
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.0
    }
}

impl From<Interval> for Values {
    fn from(i: Interval) -> Self {
        Values(vec![i])
    }
}

/// The fewest aligned prefixes `(length, value)` that cover `range` exactly, in a `width`-bit
/// value space.
pub fn prefixes(range: Interval, width: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut first = range.first as u64;
    let last = range.last as u64;
    while first <= last {
        // The largest block aligned at `first` that does not run past `last`.
        let mut size_bits = if first == 0 {
            width
        } else {
            first.trailing_zeros().min(width)
        };
        while size_bits > 0 && first + (1u64 << size_bits) - 1 > last {
            size_bits -= 1;
        }
        out.push((width - size_bits, first as u32));
        first += 1u64 << size_bits;
    }
    out
}
