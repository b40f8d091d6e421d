//! The matches of a rule: the options of tcp, udp, conntrack and state (their value grammars
//! are in `ext`), the extensions' options through their [`ext::Instance`], and the matches the
//! rule gets from them.

use ipnetwork::Ipv4Network;

use super::options::{Dir, Module, state_module};
use super::state::{Iface, Parse};
use crate::error::Result;
use crate::ext::{self, Ext, conntrack};
use crate::model::{Match, Negatable, PortRange, Rule, TcpFlags};
use crate::xtables::{param, unsupported};

impl Parse<'_> {
    /// `--sport`/`--dport` of the current instance of `module`.
    pub(super) fn port_option(&mut self, module: Module, dir: Dir, text: &str) -> Result<()> {
        let negated = self.invert;
        let db = self.db;
        let current = self
            .matches
            .iter_mut()
            .rev()
            .find(|m| m.module == module)
            .expect("a module's options exist only once it is loaded");
        let (seen, slot) = match dir {
            Dir::Source => (&mut current.sport_seen, &mut current.sport),
            Dir::Destination => (&mut current.dport_seen, &mut current.dport),
        };
        let long_name = match dir {
            Dir::Source => "source-port",
            Dir::Destination => "destination-port",
        };
        let tcp = module == Module::Tcp;
        if *seen {
            return Err(match tcp {
                true => param(format!("Only one `--{long_name}' allowed")),
                false => param(format!(
                    "udp: option \"--{long_name}\" can only be used once.\n"
                )),
            });
        }
        let range = match tcp {
            true => ext::tcp::ports(db, text)?,
            false => ext::udp::ports(db, text, long_name)?,
        };
        *seen = true;
        *slot = Some(Negatable {
            value: range,
            negated,
        });
        Ok(())
    }

    /// `--ctstate` / `--state` of the current instance of `module` (libxt_conntrack's
    /// `conntrack_mt_parse` and `state_ct23_parse`, after `xtables_option_parse`).
    pub(super) fn states_option(&mut self, module: Module, text: &str) -> Result<()> {
        let negated = self.invert;
        let current = self
            .matches
            .iter_mut()
            .rev()
            .find(|m| m.module == module)
            .expect("a module's options exist only once it is loaded");
        let (name, option) = match module {
            Module::Conntrack => ("conntrack", "ctstate"),
            _ => ("state", "state"),
        };
        if current.states.is_some() {
            return Err(param(format!(
                "{name}: option \"--{option}\" can only be used once.\n"
            )));
        }
        let states = conntrack::parse_states(state_module(module), text)?;
        if let Some(nat) = [(conntrack::NAT_SNAT, "SNAT"), (conntrack::NAT_DNAT, "DNAT")]
            .iter()
            .find(|(bit, _)| states & bit != 0)
            .map(|(_, nat)| nat)
        {
            return Err(unsupported(format_args!("ctstate `{nat}'")));
        }
        current.states = Some(Negatable {
            value: states as u8,
            negated,
        });
        Ok(())
    }

    /// tcp's `--syn` (`mask` None) and `--tcp-flags MASK COMP`, which takes COMP from the next
    /// argument.
    pub(super) fn tcp_flags_option(&mut self, mask: Option<&str>) -> Result<()> {
        let negated = self.invert;
        let index = self
            .matches
            .iter()
            .rposition(|m| m.module == Module::Tcp)
            .expect("tcp's options exist only once it is loaded");
        if self.matches[index].tcp_flags.is_some() {
            return Err(param("Only one of `--syn' or `--tcp-flags'  allowed"));
        }
        let (mask, comp) = match mask {
            None => ("SYN,RST,ACK,FIN", "SYN"),
            Some(mask) => (
                mask,
                self.getopt
                    .take_optional()
                    .ok_or_else(|| param("--tcp-flags requires two args."))?,
            ),
        };
        self.matches[index].tcp_flags = Some(Negatable {
            value: TcpFlags {
                mask: ext::tcp::flags(mask)?,
                comp: ext::tcp::flags(comp)?,
            },
            negated,
        });
        Ok(())
    }

    /// An option of an extension: of the newest instance of a match, or of the target.
    pub(super) fn ext_option(&mut self, ext: Ext, id: u8, arg: Option<&str>) -> Result<()> {
        let instance = match Ext::target_by_name(ext.name()) {
            Some(_) => self.target_ext.as_mut(),
            None => self
                .matches
                .iter_mut()
                .rev()
                .find(|m| m.module == Module::Ext(ext))
                .and_then(|m| m.ext.as_mut()),
        }
        .expect("an extension's options exist only once it is loaded");
        let mut cx = ext::Context {
            db: self.db,
            proto: self.proto.as_ref(),
            warnings: &mut self.warnings,
        };
        instance.parse(id, arg, self.invert, &mut cx)
    }

    /// The matches' final checks (`xtables_option_mfcheck`), in `-m` order, then the target's.
    pub(super) fn check_matches(&self) -> Result<()> {
        for m in &self.matches {
            if let Some(instance) = &m.ext {
                instance.finish()?;
            }
            match m.module {
                Module::Conntrack if m.states.is_none() => {
                    return Err(param("conntrack: At least one option is required"));
                }
                Module::State if m.states.is_none() => {
                    return Err(param("state: option \"--state\" must be specified\n"));
                }
                _ => {}
            }
        }
        if let Some(t) = &self.target_ext {
            t.finish()?;
        }
        Ok(())
    }

    /// The rules of the specification, one per source × destination, canonical.
    pub(super) fn rules(
        &mut self,
        srcs: &[Ipv4Network],
        dsts: &[Ipv4Network],
    ) -> Result<Vec<Rule>> {
        // `-i +` stays (libiptc compares it equal to no -i, but -L shows it); `! -i +` matches
        // nothing, which the data plane cannot say.
        let some_interface = |iface: Option<Iface>, letter| match iface {
            Some(Negatable {
                value,
                negated: true,
            }) if value.is_any() => {
                Err(unsupported(format_args!("`! -{letter} +' (no interface)")))
            }
            iface => Ok(iface),
        };
        let in_iface = some_interface(self.in_iface.take(), 'i')?;
        let out_iface = some_interface(self.out_iface.take(), 'o')?;
        let mut matches = Vec::new();
        for m in &self.matches {
            if let Some(instance) = &m.ext {
                if let ext::Value::Match(value) = instance.finish()? {
                    matches.push(value);
                }
                continue;
            }
            let Some(proto) = m.module.proto() else {
                matches.push(Match::Conntrack {
                    module: state_module(m.module),
                    states: m.states.clone().expect("check_matches saw to it"),
                });
                continue;
            };
            let canonical = |ports: Option<Negatable<PortRange>>, name| match ports {
                Some(Negatable {
                    value:
                        PortRange {
                            first: 0,
                            last: u16::MAX,
                        },
                    negated,
                }) => {
                    if negated {
                        Err(unsupported(format_args!("`! --{name} 0:65535' (no port)")))
                    } else {
                        Ok(None)
                    }
                }
                ports => Ok(ports),
            };
            matches.push(Match::Ports {
                proto,
                sport: canonical(m.sport.clone(), "sport")?,
                dport: canonical(m.dport.clone(), "dport")?,
                tcp_flags: m.tcp_flags.clone(),
            });
        }
        let proto = self.proto.clone().filter(|p| p.value != 0);
        let target = match &self.target_ext {
            Some(t) => match t.finish()? {
                ext::Value::Target(target) => Some(target),
                ext::Value::Match(_) => unreachable!("-j loads targets"),
            },
            None => self.target.clone(),
        };
        let address = |net: &Ipv4Network, inverted: Option<(&str, bool)>| {
            let negated = inverted.is_some_and(|(_, inv)| inv);
            (negated || net.prefix() != 0).then_some(Negatable {
                value: *net,
                negated,
            })
        };
        let mut rules = Vec::new();
        for src in srcs {
            for dst in dsts {
                rules.push(Rule {
                    src: address(src, self.src),
                    dst: address(dst, self.dst),
                    in_iface: in_iface.clone(),
                    out_iface: out_iface.clone(),
                    proto: proto.clone(),
                    fragment: self.fragment.clone(),
                    matches: matches.clone(),
                    target: target.clone(),
                    counter: 0,
                });
            }
        }
        Ok(rules)
    }
}
