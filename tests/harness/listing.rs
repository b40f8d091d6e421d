//! Reading the firewall's text output: `-L -v -x -n` tables, `-S` rules, error messages.

use crate::fw::Fw;

/// One rule line of `-L -v -x -n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRule {
    pub pkts: u64,
    pub bytes: u64,
    /// The rest of the line, whitespace collapsed: `DROP icmp -- * * 0.0.0.0/0 0.0.0.0/0`.
    pub rest: String,
}

/// One chain of `-L -v -x -n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedChain {
    pub name: String,
    /// `(policy, pkts, bytes)` for built-in chains (a masked `*` counter reads as u64::MAX).
    pub policy: Option<(String, u64, u64)>,
    pub rules: Vec<ListedRule>,
}

/// A parsed `-L -v -x -n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub chains: Vec<ListedChain>,
}

impl Listing {
    /// Parses the output of `-L -v -x -n` (exact counters required: `-x`).
    pub fn parse(text: &str) -> Result<Listing, String> {
        let mut chains: Vec<ListedChain> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let err = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("Chain ") {
                let (name, tail) = rest.split_once(' ').ok_or_else(|| err("chain header"))?;
                let policy = if let Some(p) = tail.strip_prefix("(policy ") {
                    // "ACCEPT 3 packets, 252 bytes)"
                    let w: Vec<&str> = p.split_whitespace().collect();
                    if w.len() != 5 || w[2] != "packets," || w[4] != "bytes)" {
                        return Err(err("policy header"));
                    }
                    // A masked counter (`*`) reads as u64::MAX.
                    let n = |s: &str| match s {
                        "*" => Ok(u64::MAX),
                        _ => s.parse::<u64>().map_err(|_| err("policy counter")),
                    };
                    Some((w[0].to_string(), n(w[1])?, n(w[3])?))
                } else {
                    None
                };
                chains.push(ListedChain {
                    name: name.to_string(),
                    policy,
                    rules: Vec::new(),
                });
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.first() == Some(&"pkts") {
                continue; // column header
            }
            let chain = chains
                .last_mut()
                .ok_or_else(|| err("rule before any chain"))?;
            if w.len() < 2 {
                return Err(err("short rule line"));
            }
            let n = |s: &str| s.parse::<u64>().map_err(|_| err("rule counter (not -x?)"));
            chain.rules.push(ListedRule {
                pkts: n(w[0])?,
                bytes: n(w[1])?,
                rest: w[2..].join(" "),
            });
        }
        Ok(Listing { chains })
    }

    pub fn chain(&self, name: &str) -> &ListedChain {
        self.chains
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no chain {name} in listing"))
    }

    /// `(pkts, bytes)` of rule `n` (1-based) of `chain`.
    pub fn rule(&self, chain: &str, n: usize) -> (u64, u64) {
        let r = &self.chain(chain).rules[n - 1];
        (r.pkts, r.bytes)
    }

    /// `(pkts, bytes)` of the policy of a built-in chain.
    pub fn policy(&self, chain: &str) -> (u64, u64) {
        let p = self.chain(chain).policy.as_ref().expect("built-in chain");
        (p.1, p.2)
    }
}

/// The rule lines (`-A ...`, `-N ...`, `-P ...`) of a `-S` output.
pub fn rule_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Error text made comparable across binaries: the binary's own name becomes `iptables`, and a
/// version banner `iptables vX.Y.Z (anything):` becomes `iptables vVERSION:`.
pub fn normalize_stderr(fw: &Fw, s: &str) -> String {
    let base = fw.basename();
    let s = if base.is_empty() || base == "iptables" {
        s.to_string()
    } else {
        s.replace(&base, "iptables")
    };
    s.lines()
        .map(normalize_banner)
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalize_banner(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("iptables v")
        && let Some(colon) = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(|r| r.len()))
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return format!("iptables vVERSION{}", &rest[colon..]);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listing() {
        let t = "Chain INPUT (policy ACCEPT 3 packets, 252 bytes)\n    pkts      bytes target     prot opt in     out     source               destination         \n       1       84 DROP       icmp --  *      *       198.18.1.3           0.0.0.0/0           \n       3      252            icmp --  *      *       0.0.0.0/0            0.0.0.0/0           \n\nChain mine (0 references)\n    pkts      bytes target     prot opt in     out     source               destination         \n";
        let l = Listing::parse(t).unwrap();
        assert_eq!(l.policy("INPUT"), (3, 252));
        assert_eq!(l.rule("INPUT", 1), (1, 84));
        assert_eq!(
            l.chain("INPUT").rules[1].rest,
            "icmp -- * * 0.0.0.0/0 0.0.0.0/0"
        );
        assert_eq!(l.chain("mine").policy, None);
    }

    #[test]
    fn normalizes_banner() {
        let fw = Fw {
            kind: crate::Kind::Pcn,
            bin: "/x/pcn-iptables".into(),
        };
        assert_eq!(
            normalize_stderr(
                &fw,
                "pcn-iptables v0.1.0 (eBPF): unknown option \"--bogus\"\nTry `pcn-iptables -h' or 'pcn-iptables --help' for more information.\n"
            ),
            "iptables vVERSION: unknown option \"--bogus\"\nTry `iptables -h' or 'iptables --help' for more information."
        );
        let fw = Fw::legacy();
        assert_eq!(
            normalize_stderr(
                &fw,
                "iptables v1.8.9 (legacy): host/network `1.2.3.999' not found"
            ),
            "iptables vVERSION: host/network `1.2.3.999' not found"
        );
        assert_eq!(
            normalize_stderr(
                &fw,
                "iptables: Bad rule (does a matching rule exist in that chain?)."
            ),
            "iptables: Bad rule (does a matching rule exist in that chain?)."
        );
    }
}
