//! Rules.
//!
//! Values are kept canonical (addresses masked, `-p 6` stored as tcp) so that two rules that
//! iptables considers equal compare equal here, which `-D` and `-C` rely on.

use serde::{Deserialize, Serialize};

use super::matches::{Match, Target};
use super::value::{AddrMask, Interface, Negatable};

/// One rule. `counter` is the slot of its packet/byte counters in the pinned counter map; it is
/// not part of the rule's identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    #[serde(with = "network")]
    pub src: Option<Negatable<AddrMask>>,
    #[serde(with = "network")]
    pub dst: Option<Negatable<AddrMask>>,
    pub in_iface: Option<Negatable<Interface>>,
    pub out_iface: Option<Negatable<Interface>>,
    /// `-p`; `None` is `-p all`.
    pub proto: Option<Negatable<u8>>,
    /// `-f` (non-first fragments only) or `! -f` (first fragments and unfragmented packets).
    pub fragment: Option<Negatable<()>>,
    pub matches: Vec<Match>,
    /// `None`: no `-j`, the rule only counts.
    pub target: Option<Target>,
    pub counter: u32,
}

impl Rule {
    /// The rule's identity for `-D` and `-C`: everything but its counters.
    pub fn same_spec(&self, other: &Rule) -> bool {
        fn iface(i: &Option<Negatable<Interface>>) -> Option<&Negatable<Interface>> {
            i.as_ref().filter(|i| i.negated || !i.value.is_any())
        }
        // Cheap fields first: `-D` compares with every rule of a long chain.
        if self.src != other.src || self.dst != other.dst || self.proto != other.proto {
            return false;
        }
        self.src == other.src
            && self.dst == other.dst
            && iface(&self.in_iface) == iface(&other.in_iface)
            && iface(&self.out_iface) == iface(&other.out_iface)
            && self.proto == other.proto
            && self.fragment == other.fragment
            && self.matches == other.matches
            && self.target == other.target
    }
}

/// `-s`/`-d` in the stored state as (address, mask, `!`): compact, and no text to format or
/// parse.
mod network {
    use super::{AddrMask, Negatable};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Net = Option<Negatable<AddrMask>>;

    pub fn serialize<S: Serializer>(net: &Net, s: S) -> Result<S::Ok, S::Error> {
        net.as_ref()
            .map(|n| (u32::from(n.value.addr), u32::from(n.value.mask), n.negated))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Net, D::Error> {
        Ok(
            Option::<(u32, u32, bool)>::deserialize(d)?.map(|(addr, mask, negated)| Negatable {
                value: AddrMask::new(addr.into(), mask.into()),
                negated,
            }),
        )
    }
}
