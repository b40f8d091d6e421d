//! The match and target extensions: one file per extension, holding what iptables keeps in its
//! `libxt_*.c`/`libipt_*.c`: the option table and its parsing, the `-S`/save printing, the `-L`
//! printing, the help text, and the extension's contract with the compiler (which packet
//! fields it constrains, what the rule's action needs). [`REGISTRY`] lists them.
//!
//! Options are parsed the way libxtables' `xtables_option_parse` and `xtables_options_fcheck`
//! drive an extension's option table ([`Instance`]).

pub mod addrtype;
pub mod ah;
pub mod comment;
pub mod connlimit;
pub mod connmark;
pub mod connmark_target;
pub mod conntrack;
pub mod ct_target;
pub mod dccp;
pub mod dnat;
pub mod dscp;
pub mod dscp_target;
pub mod ecn;
pub mod esp;
pub mod hashlimit;
pub mod icmp;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod log;
pub mod mac;
pub mod mark;
pub mod mark_target;
pub mod masquerade;
pub mod multiport;
pub mod nat;
pub mod netmap;
pub mod owner;
pub mod pkttype;
pub mod recent;
pub mod redirect;
pub mod reject;
pub mod sctp;
pub mod snat;
pub mod statistic;
pub mod tcp;
pub mod tcpmss;
pub mod tcpmss_target;
pub mod time;
pub mod tos;
pub mod tos_target;
pub mod ttl;
pub mod ttl_target;
pub mod udp;

mod api;

use std::fmt;

pub use api::*;

use crate::error::Result;
use crate::model::{CtTarget, IPPROTO_TCP, Match, NatKind, Rule, Target};
use crate::xtables::netdb::NameDb;
use crate::xtables::param;

/// Every extension, matches first (in the order `-m` looks them up), then targets.
pub static REGISTRY: [&dyn Extension; 45] = [
    &tcp::Tcp,
    &udp::Udp,
    &conntrack::Conntrack,
    &conntrack::State,
    &multiport::Multiport,
    &icmp::Icmp,
    &iprange::Iprange,
    &mac::Mac,
    &length::Length,
    &ttl::Ttl,
    &addrtype::Addrtype,
    &comment::Comment,
    &limit::LimitExt,
    &statistic::StatisticExt,
    &tos::Tos,
    &dscp::Dscp,
    &ecn::Ecn,
    &pkttype::PktType,
    &recent::RecentExt,
    &connlimit::ConnlimitExt,
    &time::TimeExt,
    &tcpmss::Tcpmss,
    &esp::Esp,
    &ah::Ah,
    &mark::Mark,
    &connmark::Connmark,
    &owner::OwnerExt,
    &hashlimit::HashlimitExt,
    &sctp::Sctp,
    &dccp::Dccp,
    &reject::Reject,
    &log::LogExt,
    &snat::SNAT,
    &dnat::DNAT,
    &masquerade::MASQUERADE,
    &redirect::REDIRECT,
    &netmap::Netmap,
    &mark_target::MarkTarget,
    &connmark_target::ConnmarkTarget,
    &tos_target::TosTarget,
    &dscp_target::DscpTarget,
    &ttl_target::TtlTarget,
    &tcpmss_target::TcpmssTarget,
    &ct_target::Ct,
    &ct_target::Notrack,
];

/// The extension a match value belongs to.
pub fn of(m: &Match) -> &'static dyn Extension {
    match m {
        Match::Ports { proto, .. } if *proto == IPPROTO_TCP => &tcp::Tcp,
        Match::Ports { .. } => &udp::Udp,
        Match::Conntrack { module, .. } => conntrack::of(*module),
        Match::ConntrackTuple { .. } => &conntrack::Conntrack,
        Match::Multiport { .. } => &multiport::Multiport,
        Match::Icmp(_) => &icmp::Icmp,
        Match::Iprange { .. } => &iprange::Iprange,
        Match::Mac(_) => &mac::Mac,
        Match::Length(_) => &length::Length,
        Match::Ttl { .. } => &ttl::Ttl,
        Match::Addrtype { .. } => &addrtype::Addrtype,
        Match::Comment(_) => &comment::Comment,
        Match::Limit(_) => &limit::LimitExt,
        Match::Statistic(_) => &statistic::StatisticExt,
        Match::Tos(_) => &tos::Tos,
        Match::Dscp(_) => &dscp::Dscp,
        Match::Ecn { .. } => &ecn::Ecn,
        Match::PktType(_) => &pkttype::PktType,
        Match::Recent(_) => &recent::RecentExt,
        Match::Connlimit(_) => &connlimit::ConnlimitExt,
        Match::Time(_) => &time::TimeExt,
        Match::Tcpmss(_) => &tcpmss::Tcpmss,
        Match::Esp(_) => &esp::Esp,
        Match::Ah(_) => &ah::Ah,
        Match::Mark(_) => &mark::Mark,
        Match::Connmark(_) => &connmark::Connmark,
        Match::Owner(_) => &owner::OwnerExt,
        Match::Hashlimit(_) => &hashlimit::HashlimitExt,
        Match::Sctp { .. } => &sctp::Sctp,
        Match::Dccp { .. } => &dccp::Dccp,
    }
}

/// The extension of a target, if it is one (not a verdict or a chain).
pub fn of_target(t: &Target) -> Option<&'static dyn Extension> {
    match t {
        Target::Reject(_) => Some(&reject::Reject),
        Target::Log(_) => Some(&log::LogExt),
        Target::Mark(_) => Some(&mark_target::MarkTarget),
        Target::Connmark(_) => Some(&connmark_target::ConnmarkTarget),
        Target::Tos(_) => Some(&tos_target::TosTarget),
        Target::Dscp(_) => Some(&dscp_target::DscpTarget),
        Target::Ttl(_) => Some(&ttl_target::TtlTarget),
        Target::Tcpmss(_) => Some(&tcpmss_target::TcpmssTarget),
        Target::Ct(CtTarget { alias: true, .. }) => Some(&ct_target::Notrack),
        Target::Ct(_) => Some(&ct_target::Ct),
        Target::Nat(nat) => Some(match nat.kind {
            NatKind::Snat => &snat::SNAT,
            NatKind::Dnat => &dnat::DNAT,
            NatKind::Masquerade => &masquerade::MASQUERADE,
            NatKind::Redirect => &redirect::REDIRECT,
            NatKind::Netmap => &netmap::Netmap,
        }),
        Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => None,
    }
}

/// A handle on a registered extension, comparable and printable by name.
#[derive(Clone, Copy)]
pub struct Ext(&'static dyn Extension);

impl Ext {
    /// `-m NAME`.
    pub fn match_by_name(name: &str) -> Option<Ext> {
        Ext::find(Kind::Match, name)
    }

    /// `-j NAME`, among the target extensions.
    pub fn target_by_name(name: &str) -> Option<Ext> {
        Ext::find(Kind::Target, name)
    }

    fn find(kind: Kind, name: &str) -> Option<Ext> {
        REGISTRY
            .iter()
            .find(|e| e.kind() == kind && e.name() == name)
            .map(|e| Ext(*e))
    }

    /// The name of an option id in messages: its first entry's.
    fn option_name(self, id: u8) -> &'static str {
        self.entries()
            .iter()
            .find(|e| e.id == id)
            .map_or("", |e| e.name)
    }
}

impl std::ops::Deref for Ext {
    type Target = dyn Extension;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Ext {
    fn eq(&self, other: &Ext) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Ext {}

impl fmt::Debug for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// The extension named `name` (a match or a target), for `-h`.
pub fn by_name(name: &str) -> Option<&'static dyn Extension> {
    REGISTRY.iter().find(|e| e.name() == name).copied()
}

/// One instance of an extension in a rule: the options seen (`xflags`) and the value so far.
#[derive(Clone, Debug)]
pub struct Instance {
    pub ext: Ext,
    xflags: u32,
    pub value: Value,
}

impl Instance {
    pub fn new(ext: Ext) -> Instance {
        Instance {
            ext,
            xflags: 0,
            value: ext.init(),
        }
    }

    /// `xtables_option_parse`, then the extension's own parse of option `id`.
    pub fn parse(
        &mut self,
        id: u8,
        arg: Option<&str>,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let ext = self.ext;
        if !ext.generic_checks() {
            ext.parse(&mut self.value, id, arg.unwrap_or_default(), invert, cx)?;
            self.xflags |= 1 << id;
            return Ok(());
        }
        let name = ext.option_name(id);
        if self.xflags & (1 << id) != 0 {
            return Err(param(format!(
                "{}: option \"--{name}\" can only be used once.\n",
                ext.name()
            )));
        }
        let entry = ext.entries().iter().find(|e| e.id == id).expect("known id");
        if invert && !entry.invert {
            return Err(param(format!(
                "{}: option \"--{name}\" cannot be inverted.\n",
                ext.name()
            )));
        }
        ext.parse(&mut self.value, id, arg.unwrap_or_default(), invert, cx)?;
        self.xflags |= 1 << id;
        Ok(())
    }

    /// The extension's own final check, then `xtables_options_fcheck` (mandatory options,
    /// exclusions, options needing others), as `xtables_option_mfcall` runs them; gives the
    /// finished value.
    pub fn finish(&self) -> Result<Value> {
        let ext = self.ext;
        let mut value = self.value.clone();
        ext.check(self.xflags, &mut value)?;
        for e in ext.entries() {
            let set = self.xflags & (1 << e.id) != 0;
            if e.mandatory && !set {
                return Err(param(format!(
                    "{}: option \"--{}\" must be specified\n",
                    ext.name(),
                    e.name
                )));
            }
            if !set {
                continue;
            }
            for other in (0..32u8).filter(|&i| i != e.id) {
                let other_set = self.xflags & (1 << other) != 0;
                let problem = if e.excl & (1 << other) != 0 && other_set {
                    "cannot be used together with"
                } else if e.also & (1 << other) != 0 && !other_set {
                    "also requires"
                } else {
                    continue;
                };
                return Err(param(format!(
                    "{}: option \"--{}\" {problem} \"--{}\".\n",
                    ext.name(),
                    e.name,
                    ext.option_name(other)
                )));
            }
        }
        Ok(value)
    }
}

/// The printing of every match of a rule, for `-L` and `-S`; and the name `-m` gives it.
pub fn match_name(m: &Match) -> &'static str {
    of(m).name()
}

/// A match's `save`, after ` -m NAME`.
pub fn save(m: &Match) -> String {
    let mut out = String::new();
    of(m).save(m, &mut out);
    out
}

/// A match's `print` for `-L`.
pub fn print(db: &NameDb, rule: &Rule, m: &Match, numeric: bool) -> String {
    let mut out = String::new();
    of(m).print(m, &Show { db, rule, numeric }, &mut out);
    out
}

/// A target extension's `save`, after ` -j NAME` (nothing for verdicts and chains).
pub fn target_save(t: &Target) -> String {
    let mut out = String::new();
    if let Some(ext) = of_target(t) {
        ext.save_target(t, &mut out);
    }
    out
}

/// A target extension's `print` for `-L`, after the matches.
pub fn target_print(t: &Target, numeric: bool) -> String {
    let mut out = String::new();
    if let Some(ext) = of_target(t) {
        ext.print_target(t, numeric, &mut out);
    }
    out
}
