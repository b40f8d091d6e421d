//! iptables 1.8.9's `do_parse` and `ipv4_post_parse`: options in command-line order, with
//! their checks and messages in the order iptables makes them.

use pcn_iptables_common::Counter;

use super::getopt::{Got, LongOpt};
use super::invocation::Invocation;
use super::names::{jump_target, target_name, valid_chain_name};
use super::options::*;
use super::state::{Iface, Parse};
use crate::error::{Error, Result};
use crate::ext::{Ext, Instance};
use crate::model::{Command, Interface, Negatable, Target, Wait};
use crate::xtables::netdb::NameDb;
use crate::xtables::{param, unsupported, value};

/// "Bad argument `x'" comes without iptables' usual "iptables v1.8.9 (legacy): " prefix.
fn bad_argument(arg: &str) -> Error {
    Error::try_help(format!("Bad argument `{arg}'"))
}

/// Parses `args`, the arguments after `argv0` (which some messages quote); also returns the
/// warnings iptables would print.
pub fn parse(db: &NameDb, argv0: &str, args: &[String]) -> (Result<Invocation>, Vec<String>) {
    let argv = std::iter::once(argv0)
        .chain(args.iter().map(String::as_str))
        .collect();
    let mut p = Parse::new(db, argv);
    let result = p.run();
    (result, p.warnings)
}

impl<'a> Parse<'a> {
    fn run(&mut self) -> Result<Invocation> {
        loop {
            let key = (self.loaded.len(), self.target_ext.is_some());
            if self.long.1 != key {
                self.long = (self.long_options(), key);
            }
            let got = self.getopt.next(short_option, &self.long.0);
            match got {
                Got::End => break,
                Got::NonOption("!") => {
                    if self.invert {
                        return Err(param("multiple consecutive ! not allowed"));
                    }
                    self.invert = true;
                    continue;
                }
                Got::NonOption(arg) => return Err(bad_argument(arg)),
                // Both answer at once, whatever follows.
                Got::Opt(Opt::Letter('h'), _) => return self.help(),
                Got::Opt(Opt::Letter('V'), _) => {
                    return Ok(self.answer(Command::Version {
                        negated: self.invert,
                    }));
                }
                Got::Opt(opt, optarg) => self.option(opt, optarg)?,
                Got::Missing | Got::Unknown => {
                    if self.load_proto(got == Got::Unknown)? {
                        self.getopt.rewind();
                        continue;
                    }
                    let last = self.getopt.last();
                    return Err(param(match got {
                        Got::Missing => format!("option \"{last}\" requires an argument"),
                        _ => format!("unknown option \"{last}\""),
                    }));
                }
            }
            self.invert = false;
        }
        self.finish()
    }

    /// `-h`: the help of the matches given so far, or else of the match named by `-p`
    /// (`iptables -p tcp -h`), and of the standard target when `-j` named a verdict.
    fn help(&self) -> Result<Invocation> {
        let mut matches: Vec<&'static str> = self.matches.iter().map(|m| m.ext.name()).collect();
        if let (true, Some(protocol)) = (matches.is_empty(), self.protocol.as_deref()) {
            match by_protocol(protocol) {
                Some(ext) => matches.push(ext.name()),
                None if PROTOCOL_MATCH_OPTIONS.iter().any(|(m, _)| *m == protocol) => {
                    return Err(unsupported(format_args!("match `{protocol}'")));
                }
                None => {}
            }
        }
        let target = match (&self.target_ext, &self.target) {
            (Some(t), _) => Some(t.ext.name()),
            (None, Some(Target::Accept | Target::Drop | Target::Return)) => Some("standard"),
            _ => None,
        };
        Ok(self.answer(Command::Help { target, matches }))
    }

    /// An invocation that only prints (`-h`, `-V`).
    fn answer(&self, command: Command) -> Invocation {
        Invocation {
            command,
            wait: Wait::NoWait,
            table: self.table.clone(),
            verbose: false,
            counters: None,
        }
    }

    /// getopt's long options: iptables' own, then the loaded matches', newest first.
    fn long_options(&self) -> Vec<LongOpt<Opt>> {
        let own = LONG_OPTIONS.iter().map(|&(name, has_arg, c)| LongOpt {
            name,
            has_arg,
            val: if c == '0' {
                Opt::LineNumbers
            } else {
                Opt::Letter(c)
            },
        });
        own.chain(self.loaded.iter().rev().flat_map(|&ext| ext_options(ext)))
            .chain(self.target_ext.iter().flat_map(|t| ext_options(t.ext)))
            .collect()
    }

    /// iptables' `load_proto`: an option nobody knows loads the match named by `-p`, once.
    /// Returns whether a match was loaded (the option is then parsed again).
    fn load_proto(&mut self, unknown: bool) -> Result<bool> {
        let Some(protocol) = self.protocol.clone() else {
            return Ok(false);
        };
        if self.proto_used {
            return Ok(false);
        }
        self.proto_used = true;
        let name = match value::xtables_uint(&protocol, 0, 255) {
            Some(n) => {
                let numeric = self.options & opt::NUMERIC != 0;
                match value::protocol_name(self.db, n as u8, numeric) {
                    Some(name) => name.to_string(),
                    None => return Ok(false),
                }
            }
            None => protocol,
        };
        if let Some(ext) = by_protocol(&name) {
            self.add_match(ext);
            return Ok(true);
        }
        // A protocol match pcn-iptables lacks: refuse its options by name.
        let option = self
            .getopt
            .last()
            .strip_prefix("--")
            .map(|o| o.split('=').next().unwrap_or(o));
        let known = PROTOCOL_MATCH_OPTIONS.iter().find(|(m, _)| *m == name);
        if let (true, Some(option), Some((_, names))) = (unknown, option, known)
            && names.iter().any(|n| n.starts_with(option))
        {
            return Err(unsupported(format_args!("match `{name}'")));
        }
        Ok(false)
    }

    fn add_match(&mut self, ext: Ext) {
        self.matches.push(Instance::new(ext));
        if !self.loaded.contains(&ext) {
            self.loaded.push(ext);
        }
    }

    /// `add_command`
    fn add_command(&mut self, new: u32, others: u32) -> Result<()> {
        if self.invert {
            return Err(param("unexpected '!' flag"));
        }
        let clash = self.command & !others;
        if clash != 0 {
            let letter = |bits: u32| cmd::LETTERS[(31 - bits.leading_zeros()) as usize];
            return Err(param(format!(
                "Cannot use -{} with -{}",
                letter(new),
                letter(clash)
            )));
        }
        self.command |= new;
        Ok(())
    }

    /// `set_option`
    fn set_option(&mut self, option: u32) -> Result<()> {
        let letter = opt::LETTERS[option.trailing_zeros() as usize];
        if self.options & option != 0 {
            return Err(param(format!("multiple -{letter} flags not allowed")));
        }
        self.options |= option;
        if self.invert && option & opt::INVERTIBLE == 0 {
            return Err(param(format!("cannot have ! before -{letter}")));
        }
        Ok(())
    }

    /// A rule number argument (`parse_rulenumber`).
    fn rule_number(text: &str) -> Result<usize> {
        value::xtables_uint(text, 1, i32::MAX as u64)
            .map(|n| n as usize)
            .ok_or_else(|| param(format!("Invalid rule number `{text}'")))
    }

    /// `-L`, `-S`, `-F`, `-Z`: an optional chain, attached or next.
    fn optional_chain(&mut self, optarg: Option<&str>) {
        if let Some(chain) = optarg.or_else(|| self.getopt.take_optional()) {
            self.chain = Some(chain.to_string());
        }
    }

    fn option(&mut self, opt: Opt, optarg: Option<&'a str>) -> Result<()> {
        let letter = match opt {
            Opt::Letter(c) => c,
            Opt::LineNumbers => return self.set_option(opt::LINENUMBERS),
            Opt::Ext(ext, id) => return self.ext_option(ext, id, optarg),
        };
        match letter {
            'A' | 'C' | 'D' | 'R' | 'I' | 'L' | 'S' | 'F' | 'Z' | 'P' | 'N' | 'X' | 'E' => {
                self.command_option(letter, optarg)
            }
            'p' | 's' | 'd' | 'g' | 'j' | 'i' | 'o' | 'f' | 'm' => self.rule_option(letter, optarg),
            _ => self.other_option(letter, optarg),
        }
    }

    /// The commands (`-A`, `-D`, `-L`...).
    fn command_option(&mut self, letter: char, optarg: Option<&'a str>) -> Result<()> {
        let required = || optarg.expect("getopt gives required arguments");
        match letter {
            'A' | 'C' => {
                let new = match letter {
                    'A' => cmd::APPEND,
                    _ => cmd::CHECK,
                };
                self.add_command(new, 0)?;
                self.chain = Some(required().to_string());
            }
            'D' => {
                self.add_command(cmd::DELETE, 0)?;
                self.chain = Some(required().to_string());
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                    self.command = cmd::DELETE_NUM;
                }
            }
            'R' => {
                self.add_command(cmd::REPLACE, 0)?;
                self.chain = Some(required().to_string());
                let n = self
                    .getopt
                    .take_optional()
                    .ok_or_else(|| param("-R requires a rule number"))?;
                self.rulenum = Self::rule_number(n)?;
            }
            'I' => {
                self.add_command(cmd::INSERT, 0)?;
                self.chain = Some(required().to_string());
                self.rulenum = match self.getopt.take_optional() {
                    Some(n) => Self::rule_number(n)?,
                    None => 1,
                };
            }
            'L' | 'S' => {
                let new = match letter {
                    'L' => cmd::LIST,
                    _ => cmd::LIST_RULES,
                };
                self.add_command(new, cmd::ZERO | cmd::ZERO_NUM)?;
                self.optional_chain(optarg);
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                }
            }
            'F' => {
                self.add_command(cmd::FLUSH, 0)?;
                self.optional_chain(optarg);
            }
            'Z' => {
                self.add_command(cmd::ZERO, cmd::LIST | cmd::LIST_RULES)?;
                self.optional_chain(optarg);
                if let Some(n) = self.getopt.take_optional() {
                    self.rulenum = Self::rule_number(n)?;
                    self.command = cmd::ZERO_NUM;
                }
            }
            'P' => {
                self.add_command(cmd::SET_POLICY, 0)?;
                self.chain = Some(required().to_string());
                let policy = self
                    .getopt
                    .take_optional()
                    .ok_or_else(|| param("-P requires a chain and a policy"))?;
                self.policy = Some(policy.to_string());
            }
            'N' => {
                let chain = required();
                valid_chain_name(chain)?;
                self.add_command(cmd::NEW_CHAIN, 0)?;
                self.chain = Some(chain.to_string());
            }
            'X' => {
                self.add_command(cmd::DELETE_CHAIN, 0)?;
                self.optional_chain(optarg);
            }
            'E' => {
                self.add_command(cmd::RENAME_CHAIN, 0)?;
                self.chain = Some(required().to_string());
                self.new_name = Some(
                    self.getopt
                        .take_optional()
                        .ok_or_else(|| param("-E requires old-chain-name and new-chain-name"))?,
                );
            }
            _ => unreachable!("option gives command letters only"),
        }
        Ok(())
    }

    /// The rule specification (`-p`, `-s`, `-d`, `-i`, `-o`, `-f`, `-j`, `-g`, `-m`).
    fn rule_option(&mut self, letter: char, optarg: Option<&'a str>) -> Result<()> {
        let required = || optarg.expect("getopt gives required arguments");
        // -p, -s, -d, -i, -o and -j read argv[optind - 1] in iptables 1.8.9, which is the whole
        // element when the value is attached (`-ptcp` is protocol "-ptcp").
        let element = self.getopt.last();
        match letter {
            'p' => {
                self.set_option(opt::PROTOCOL)?;
                let text = element.to_ascii_lowercase();
                let proto = value::protocol(self.db, &text)
                    .ok_or_else(|| param(format!("unknown protocol \"{text}\" specified")))?;
                if proto == 0 && self.invert {
                    return Err(param("rule would never match protocol"));
                }
                self.proto = Some(Negatable {
                    value: proto,
                    negated: self.invert,
                });
                self.protocol = Some(text);
            }
            's' => {
                self.set_option(opt::SOURCE)?;
                self.src = Some((element, self.invert));
            }
            'd' => {
                self.set_option(opt::DESTINATION)?;
                self.dst = Some((element, self.invert));
            }
            'g' => {
                self.set_option(opt::JUMP)?;
                self.target = Some(Target::Goto(target_name(required())?.to_string()));
            }
            'j' => {
                self.set_option(opt::JUMP)?;
                let name = target_name(element)?;
                if super::is_announced_chain(name) {
                    self.target = Some(Target::Jump(name.to_string()));
                } else {
                    match Ext::target_by_name(name) {
                        Some(ext) => self.target_ext = Some(Instance::new(ext)),
                        None => self.target = Some(jump_target(name)?),
                    }
                }
            }
            'i' => self.in_iface = Some(self.via(opt::VIANAMEIN, required(), element)?),
            'o' => self.out_iface = Some(self.via(opt::VIANAMEOUT, required(), element)?),
            'f' => {
                self.set_option(opt::FRAGMENT)?;
                self.fragment = Some(Negatable {
                    value: (),
                    negated: self.invert,
                });
            }
            'm' => {
                if self.invert {
                    return Err(param("unexpected ! flag before --match"));
                }
                let name = required();
                if name.len() >= MAX_NAME {
                    return Err(param(format!(
                        "Invalid match name \"{name}\" ({} chars max)",
                        MAX_NAME - 1
                    )));
                }
                match Ext::match_by_name(name) {
                    Some(ext) => self.add_match(ext),
                    None if EXTENSION_MATCHES.contains(&name) => {
                        return Err(unsupported(format_args!("match `{name}'")));
                    }
                    None => {
                        return Err(param(format!(
                            "Couldn't load match `{name}':No such file or directory\n"
                        )));
                    }
                }
            }
            _ => unreachable!("option gives rule letters only"),
        }
        Ok(())
    }

    /// The other options (`-v`, `-n`, `-x`, `-t`, `-w`, `-W`, `-c`...).
    fn other_option(&mut self, letter: char, optarg: Option<&'a str>) -> Result<()> {
        let required = || optarg.expect("getopt gives required arguments");
        match letter {
            'v' => {
                if self.verbose == 0 {
                    self.set_option(opt::VERBOSE)?;
                }
                self.verbose += 1;
            }
            'n' => self.set_option(opt::NUMERIC)?,
            'x' => self.set_option(opt::EXPANDED)?,
            't' => {
                if self.invert {
                    return Err(param("unexpected ! flag before --table"));
                }
                self.table = required().to_string();
            }
            'w' => {
                let text = optarg.or_else(|| self.getopt.take_optional());
                self.wait = match text {
                    // sscanf("%i"): trailing text is ignored.
                    Some(text) => match value::c_number(text) {
                        Some(n) => n.value() as i64 as i32 as i64,
                        None => return Err(param("wait seconds not numeric")),
                    },
                    None => -1,
                };
            }
            'W' => {
                let text = optarg
                    .or_else(|| self.getopt.take_optional())
                    .ok_or_else(|| param("wait interval value required"))?;
                // sscanf("%u")
                let usec = value::decimal_number(text)
                    .ok_or_else(|| param("wait interval not numeric"))?
                    .value() as u32;
                if usec > 999_999 {
                    return Err(param(format!("too long usec wait {usec} > 999999 usec")));
                }
                self.warnings
                    .push("Ignoring deprecated --wait-interval option.\n".into());
                self.wait_interval = true;
            }
            'M' | '4' => {}
            'c' => {
                self.set_option(opt::COUNTERS)?;
                let packets = required();
                // `-c PKTS,BYTES` or `-c PKTS BYTES`; the comma is looked for from the second
                // character on.
                let bytes = match packets.get(1..).and_then(|p| p.find(',')) {
                    Some(comma) => Some(&packets[comma + 2..]),
                    None => self.getopt.take_optional(),
                }
                .ok_or_else(|| param("-c requires packet and byte counter"))?;
                // sscanf("%llu")
                let count = |text, what| {
                    value::decimal_number(text)
                        .map(|n| n.value())
                        .ok_or_else(|| param(format!("-c {what} counter not numeric")))
                };
                self.counters = Some(Counter {
                    packets: count(packets, "packet")?,
                    bytes: count(bytes, "byte")?,
                });
            }
            // iptables-legacy is IPv4 only: `-6` is its "Try `iptables -h'" alone.
            '6' => return Err(Error::try_help("")),
            // In the optstring but handled by nobody: command_default's last resort.
            'b' => return Err(param("Unknown arg \"(null)\"")),
            _ => unreachable!("short_option and LONG_OPTIONS only return handled letters"),
        }
        Ok(())
    }

    /// `-i`/`-o`: iptables checks the value for emptiness, then the option, then parses the
    /// interface from the whole element.
    fn via(&mut self, option: u32, optarg: &str, element: &str) -> Result<Iface> {
        if optarg.is_empty() {
            return Err(param("Empty interface is likely to be undesired"));
        }
        self.set_option(option)?;
        Ok(Negatable {
            value: self.interface(element)?,
            negated: self.invert,
        })
    }

    /// `xtables_parse_interface`
    fn interface(&mut self, text: &str) -> Result<Interface> {
        if text.len() + 1 > IFNAMSIZ {
            return Err(param(format!(
                "interface name `{text}' must be shorter than IFNAMSIZ ({})",
                IFNAMSIZ - 1
            )));
        }
        if text.contains(char::is_whitespace) {
            // -S could not print it back as one word.
            return Err(unsupported(format_args!(
                "interface name `{text}' with white space"
            )));
        }
        if let Some(prefix) = text.strip_suffix('+') {
            return Ok(Interface {
                name: prefix.to_string(),
                wildcard: true,
            });
        }
        if text.contains('/') {
            self.warnings.push(format!(
                "Warning: weird character in interface `{text}' ('/' and ' ' are not allowed by the kernel).\n"
            ));
        }
        Ok(Interface {
            name: text.to_string(),
            wildcard: false,
        })
    }
}
