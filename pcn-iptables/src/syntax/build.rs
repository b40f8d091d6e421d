//! After the last option: iptables' checks (`generic_opt_check`, the addresses), then the
//! command.

use super::invocation::Invocation;
use super::names::{addresses, storable_chain_name};
use super::options::{LEGAL, MAX_NAME, cmd, opt};
use super::state::Parse;
use crate::error::{Error, OTHER_PROBLEM, Result};
use crate::model::{AddrMask, Command, ListOptions, Policy, TableName, Target, Wait, Zeroing};
use crate::xtables::{param, unsupported};

impl<'a> Parse<'a> {
    /// The checks after the last option, then the command.
    pub(super) fn finish(&mut self) -> Result<Invocation> {
        let drop = match &self.target {
            Some(Target::Drop) => true,
            Some(Target::Goto(name)) => name == "DROP",
            _ => false,
        };
        if self.table == "nat" && (self.policy.as_deref() == Some("DROP") || drop) {
            return Err(param(
                "\nThe \"nat\" table is not intended for filtering, \
                 the use of DROP is therefore inhibited.\n\n",
            ));
        }
        if self.wait == 0 && self.wait_interval {
            return Err(param("--wait-interval only makes sense with --wait\n"));
        }
        self.check_matches()?;
        if self.getopt.has_rest() {
            return Err(param("unknown arguments found on commandline"));
        }
        if self.command == 0 {
            return Err(param("no command specified"));
        }
        if self.invert {
            return Err(param("nothing appropriate following !"));
        }
        let rule_command = self.command & cmd::RULE != 0;
        let default = |given: Option<(&'a str, bool)>| match given {
            None if rule_command => Some(("0.0.0.0/0", false)),
            given => given,
        };
        let srcs = default(self.src)
            .map(|(text, _)| addresses(self.db, text))
            .transpose()?;
        let dsts = default(self.dst)
            .map(|(text, _)| addresses(self.db, text))
            .transpose()?;
        let count = |list: &Option<Vec<_>>| list.as_ref().map_or(0, Vec::len);
        let inverted = self.src.is_some_and(|(_, inv)| inv) || self.dst.is_some_and(|(_, inv)| inv);
        if (count(&srcs) > 1 || count(&dsts) > 1) && inverted {
            return Err(param(
                "! not allowed with multiple source or destination IP addresses",
            ));
        }
        if self.command == cmd::REPLACE && (count(&srcs) != 1 || count(&dsts) != 1) {
            return Err(param("Replacement rule does not specify a unique address"));
        }
        self.check_options()?;
        if let Some(chain) = self.chain.as_deref().filter(|c| c.len() >= MAX_NAME) {
            return Err(param(format!(
                "chain name `{chain}' too long (must be under {MAX_NAME} chars)"
            )));
        }
        if rule_command || self.command == cmd::DELETE_NUM {
            let chain = self.chain.as_deref().unwrap_or_default();
            if matches!(chain, "PREROUTING" | "INPUT") && self.options & opt::VIANAMEOUT != 0 {
                return Err(param(format!("Can't use -o with {chain}\n")));
            }
            if matches!(chain, "POSTROUTING" | "OUTPUT") && self.options & opt::VIANAMEIN != 0 {
                return Err(param(format!("Can't use -i with {chain}\n")));
            }
        }
        if self.verbose > 1 {
            return Err(unsupported(
                "option `-v -v' (libiptc's dump of the kernel table)",
            ));
        }
        let wait = match self.wait {
            0 => Wait::NoWait,
            // -1 is "forever"; other negative values make alarm(2) wait ~136 years.
            n if n < 0 => Wait::Forever,
            n => Wait::Seconds(n as u64),
        };
        let command = self.build(srcs.unwrap_or_default(), dsts.unwrap_or_default())?;
        Ok(Invocation {
            command,
            wait,
            table: self.table.clone(),
            verbose: self.verbose > 0,
            counters: self.counters,
        })
    }

    /// `generic_opt_check`
    pub(super) fn check_options(&self) -> Result<()> {
        for (i, letter) in opt::LETTERS.iter().enumerate() {
            if self.options & (1 << i) == 0 {
                continue;
            }
            let mut legal = 0i8;
            for (_, row) in LEGAL.iter().filter(|(c, _)| self.command & c != 0) {
                if row.as_bytes().get(i) != Some(&b'x') {
                    legal = 1;
                } else if legal == 0 {
                    legal = -1;
                }
            }
            if legal == -1 {
                return Err(param(format!(
                    "Illegal option `-{letter}' with this command"
                )));
            }
        }
        Ok(())
    }

    /// The Command, from what the options gave.
    pub(super) fn build(&mut self, srcs: Vec<AddrMask>, dsts: Vec<AddrMask>) -> Result<Command> {
        let chain = self.chain.clone();
        let rulenum = (self.rulenum > 0).then_some(self.rulenum);
        let named = || chain.clone().expect("the command takes a chain");
        let zero = match self.command & (cmd::ZERO | cmd::ZERO_NUM) {
            0 => None,
            cmd::ZERO => Some(Zeroing::Chains),
            _ => Some(Zeroing::Rule),
        };
        Ok(match self.command & !(cmd::ZERO | cmd::ZERO_NUM) {
            0 => Command::Zero { chain, rulenum },
            cmd::LIST => Command::List {
                chain,
                rulenum,
                options: ListOptions {
                    numeric: self.options & opt::NUMERIC != 0,
                    verbose: self.verbose > 0,
                    exact: self.options & opt::EXPANDED != 0,
                    line_numbers: self.options & opt::LINENUMBERS != 0,
                },
                zero,
            },
            cmd::LIST_RULES => Command::ListRules {
                chain,
                rulenum,
                verbose: self.verbose > 0,
                zero,
            },
            cmd::FLUSH => Command::Flush { chain },
            cmd::NEW_CHAIN => Command::NewChain { chain: named() },
            cmd::DELETE_CHAIN => Command::DeleteChain { chain },
            cmd::RENAME_CHAIN => {
                let new_name = self.new_name.expect("-E takes a new name").to_string();
                storable_chain_name(&new_name)?;
                Command::RenameChain {
                    chain: named(),
                    new_name,
                }
            }
            cmd::DELETE_NUM => Command::DeleteNum {
                chain: named(),
                index: self.rulenum,
            },
            cmd::SET_POLICY => {
                let chain = named();
                // libiptc's checks, made here since both are static (a table pcn-iptables
                // does not have is refused later, when it is opened).
                let base = TableName::by_name(&self.table).map(TableName::base_chains);
                if base.is_some_and(|base| !base.contains(&chain.as_str())) {
                    return Err(Error::plain(OTHER_PROBLEM, "Bad built-in chain name"));
                }
                let policy = match self.policy.as_deref() {
                    Some("ACCEPT") => Policy::Accept,
                    Some("DROP") => Policy::Drop,
                    _ => {
                        return Err(Error::plain(
                            OTHER_PROBLEM,
                            "Bad policy name. Run `dmesg' for more information",
                        ));
                    }
                };
                Command::Policy { chain, policy }
            }
            rule_command => {
                let mut rules = self.rules(&srcs, &dsts)?;
                let chain = named();
                match rule_command {
                    cmd::APPEND => Command::Append { chain, rules },
                    cmd::INSERT => Command::Insert {
                        chain,
                        index: self.rulenum,
                        rules,
                    },
                    cmd::DELETE => Command::Delete { chain, rules },
                    cmd::CHECK => Command::Check { chain, rules },
                    cmd::REPLACE => Command::Replace {
                        chain,
                        index: self.rulenum,
                        rule: rules.remove(0),
                    },
                    other => unreachable!("add_command admits no command set {other:#x}"),
                }
            }
        })
    }
}
