//! The matches and the target extension of a rule: their options, through each one's
//! [`ext::Instance`], their final checks, and the rules they make.

use super::state::{Iface, Parse};
use crate::error::Result;
use crate::ext::{self, Ext};
use crate::model::{AddrMask, Negatable, Rule};
use crate::xtables::unsupported;

impl Parse<'_> {
    /// An option of an extension: of the newest instance of a match, or of the target.
    pub(super) fn ext_option(&mut self, ext: Ext, id: u8, arg: Option<&str>) -> Result<()> {
        let instance = match Ext::target_by_name(ext.name()) {
            Some(_) => self.target_ext.as_mut(),
            None => self.matches.iter_mut().rev().find(|m| m.ext == ext),
        }
        .expect("an extension's options exist only once it is loaded");
        let getopt = &mut self.getopt;
        let mut next_arg = || getopt.take_optional().map(str::to_string);
        let mut cx = ext::Context {
            db: self.db,
            proto: self.proto.as_ref(),
            warnings: &mut self.warnings,
            next_arg: &mut next_arg,
        };
        instance.parse(id, arg, self.invert, &mut cx)
    }

    /// The matches' final checks (`xtables_option_mfcheck`), in `-m` order, then the target's.
    pub(super) fn check_matches(&self) -> Result<()> {
        for m in &self.matches {
            m.finish()?;
        }
        if let Some(t) = &self.target_ext {
            t.finish()?;
        }
        Ok(())
    }

    /// The rules of the specification, one per source × destination, canonical.
    pub(super) fn rules(&mut self, srcs: &[AddrMask], dsts: &[AddrMask]) -> Result<Vec<Rule>> {
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
            if let ext::Value::Match(value) = m.finish()? {
                matches.push(m.ext.canonical(value)?);
            }
        }
        let proto = self.proto.clone().filter(|p| p.value != 0);
        let target = match &self.target_ext {
            Some(t) => match t.finish()? {
                ext::Value::Target(target) => Some(target),
                ext::Value::Match(_) => unreachable!("-j loads targets"),
            },
            None => self.target.clone(),
        };
        let address = |net: &AddrMask, inverted: Option<(&str, bool)>| {
            let negated = inverted.is_some_and(|(_, inv)| inv);
            (negated || !net.mask.is_unspecified()).then_some(Negatable {
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
