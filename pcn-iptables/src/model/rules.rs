//! A chain's rules, decoded when first read: a chain the stored state brings keeps its bytes
//! until then, and is stored again from them while unchanged. A `--noflush` restore replacing
//! a few chains of thousands (kube-proxy's every sync) decodes and encodes those few.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::rule::Rule;

/// Bytes shared by the chains of one stored state (the mapped state map).
pub type Shared = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// What the rest of a command needs of a filter chain's rules it does not read, stored beside
/// them (`ruleset::summary` makes it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Each rule's counter slot.
    pub counters: Vec<u32>,
    /// The chains its rules jump or go to, with the rule's index.
    pub jumps: Vec<(u32, String)>,
    /// The first rule that ends netfilter's walk of the chain (an unconditional ACCEPT, DROP
    /// or RETURN): the rules after it are reached from no hook.
    pub walk_end: Option<u32>,
    /// The hooks every rule up to `walk_end` may be reached from (`ruleset::commit`'s bits).
    pub hooks: u8,
    /// Whether a rule has `-m recent` or `-m hashlimit` (whose lists and tables are the
    /// namespace's, made from every rule's).
    pub named: bool,
    /// What they need of the generation's flags (`compile::rule_flags`).
    pub flags: u32,
    /// The compiler's: whether every packet of a flow meets the same outcome in the chain, a
    /// rule counts connections or needs the local routes, and a rule's action is computed
    /// anew by every change (`compile::summarize`).
    pub cacheable: bool,
    pub connlimit: bool,
    pub local_routes: bool,
    pub computed: bool,
}

/// Rules encoded as they are stored: postcard's sequence of `Rule`, and their summary.
#[derive(Clone)]
pub struct Encoded {
    bytes: Shared,
    range: std::ops::Range<usize>,
    count: u32,
    summary: Arc<Summary>,
}

impl Encoded {
    /// `count` rules at `range` of `bytes`.
    pub fn new(bytes: Shared, range: std::ops::Range<usize>, summary: Summary) -> Encoded {
        Encoded {
            bytes,
            range,
            count: summary.counters.len() as u32,
            summary: Arc::new(summary),
        }
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn bytes(&self) -> &[u8] {
        &(*self.bytes).as_ref()[self.range.clone()]
    }

    fn decode(&self) -> Vec<Rule> {
        match postcard::from_bytes::<Vec<Rule>>(self.bytes()) {
            Ok(rules) if rules.len() == self.count as usize => rules,
            // Only a state map written by someone else than pcn-iptables gets here.
            _ => panic!("the stored rules of a chain do not decode: the stored state is damaged"),
        }
    }
}

/// The encoding of `rules` (what `Encoded` holds).
pub fn encode(rules: &[Rule]) -> postcard::Result<Vec<u8>> {
    postcard::to_allocvec(rules)
}

#[derive(Clone, Default)]
pub struct Rules {
    decoded: OnceLock<Vec<Rule>>,
    /// The stored bytes, while they are what `decoded` holds or would hold.
    stored: Option<Encoded>,
}

impl Rules {
    /// No rules.
    pub const fn new() -> Rules {
        Rules {
            decoded: OnceLock::new(),
            stored: None,
        }
    }

    /// Rules kept as `stored` until read.
    pub fn stored(stored: Encoded) -> Rules {
        Rules {
            decoded: OnceLock::new(),
            stored: Some(stored),
        }
    }

    /// Their stored bytes, when they are unchanged since read.
    pub fn unchanged(&self) -> Option<&Encoded> {
        self.stored.as_ref()
    }

    /// Their summary, when they are unchanged since read.
    pub fn summary(&self) -> Option<&Summary> {
        self.stored.as_ref().map(|s| &*s.summary)
    }

    /// The chains they jump or go to, with the rule's index.
    pub fn jumps(&self) -> Vec<(usize, &str)> {
        match (self.decoded.get(), self.summary()) {
            (None, Some(s)) => (s.jumps.iter())
                .map(|(i, to)| (*i as usize, to.as_str()))
                .collect(),
            _ => (self.iter().enumerate())
                .filter_map(|(i, r)| Some((i, r.target.as_ref()?.chain()?)))
                .collect(),
        }
    }

    /// Empties them, without reading them first.
    pub fn clear(&mut self) {
        *self = Rules::default();
    }

    /// How many, without decoding them.
    pub fn len(&self) -> usize {
        match (self.decoded.get(), &self.stored) {
            (Some(rules), _) => rules.len(),
            (None, Some(s)) => s.count as usize,
            (None, None) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each rule's counter slot.
    pub fn counters(&self) -> impl Iterator<Item = u32> + '_ {
        let (decoded, stored) = match (self.decoded.get(), &self.stored) {
            (None, Some(s)) => (None, Some(&s.summary.counters)),
            (decoded, _) => (decoded, None),
        };
        let decoded = decoded.into_iter().flatten().map(|r| r.counter);
        decoded.chain(stored.into_iter().flatten().copied())
    }

    /// Whether they were decoded (tests: what a command leaves encoded).
    pub fn is_decoded(&self) -> bool {
        self.decoded.get().is_some()
    }
}

impl Deref for Rules {
    type Target = Vec<Rule>;

    fn deref(&self) -> &Vec<Rule> {
        self.decoded.get_or_init(|| match &self.stored {
            Some(s) => s.decode(),
            None => Vec::new(),
        })
    }
}

impl DerefMut for Rules {
    fn deref_mut(&mut self) -> &mut Vec<Rule> {
        let _ = Deref::deref(&*self);
        self.stored = None;
        self.decoded.get_mut().expect("decoded just now")
    }
}

impl From<Vec<Rule>> for Rules {
    fn from(rules: Vec<Rule>) -> Rules {
        Rules {
            decoded: OnceLock::from(rules),
            stored: None,
        }
    }
}

impl FromIterator<Rule> for Rules {
    fn from_iter<I: IntoIterator<Item = Rule>>(iter: I) -> Rules {
        Rules::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Rules {
    type Item = &'a Rule;
    type IntoIter = std::slice::Iter<'a, Rule>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Rules {
    type Item = &'a mut Rule;
    type IntoIter = std::slice::IterMut<'a, Rule>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.deref().fmt(f)
    }
}

impl Serialize for Rules {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.deref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rules, D::Error> {
        Vec::<Rule>::deserialize(d).map(Rules::from)
    }
}
