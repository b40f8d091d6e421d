//! The TC hook of `pcn_egress` (egress: OUTPUT) and `pcn_answer` (ingress: REJECT's answers).
//!
//! Two ways in, one per install:
//! - **TCX** (Linux 6.6 and newer): a bpf link per program and interface, pinned in the
//!   namespace's directory (`tc-IFINDEX`, `tci-IFINDEX`; see `attach`);
//! - **classic**: a `clsact` qdisc and a `cls_bpf` filter in direct-action mode, made through
//!   netlink, at preference `PRIORITY`, handle `HANDLE` (protocol all) of the interface's
//!   egress or ingress, named after the program. `tc filter show dev IFACE egress` shows it.
//!
//! A new install takes TCX where the kernel has it (`BPF_PROG_QUERY` of TCX on lo answers;
//! kernels before 6.6 refuse it with EINVAL), the classic hook otherwise, or what
//! `PCN_IPTABLES_TC_HOOK` (`tcx`, `classic`, `auto`) asks for. An install keeps its hook until
//! `--uninstall` (both at once would judge OUTPUT twice): TCX link pins tell a TCX install, the
//! record `RECORD` a classic one.
//!
//! Classic filters are no bpf links: they cannot be pinned, and they stay in the kernel after
//! the command exits, until deleted or until their device goes (with its namespace too: a
//! dying namespace's veths are deleted, and a physical device moved back to the initial
//! namespace loses its qdiscs on the way). What is attached is asked of the kernel, by a dump of
//! the interface's filters. The kernel cannot tell who made a `clsact` qdisc: `RECORD` (a hash
//! map, ifindex → 1) lists those we made, for `--uninstall` to delete them once they hold no
//! filter. Filters and qdiscs that are not ours are never touched.

use std::{collections::HashSet, path::Path, sync::OnceLock};

use anyhow::{Context as _, Result, bail};
use aya::{
    maps::{HashMap, Map, MapData},
    programs::{
        Link as _, SchedClassifier, TcAttachType,
        tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle},
    },
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO};
use netlink_packet_route::{
    RouteNetlinkMessage,
    tc::{TcAttribute, TcFilterBpfOption, TcHandle as NlHandle, TcMessage, TcOption},
};

use super::rtnl::Rtnl;
use super::sys;
use crate::compile::Link;

/// Preference (priority) of our filters on both hooks.
pub const PRIORITY: u16 = 0x5043;
/// Handle of our filters at that preference.
pub const HANDLE: u32 = 1;
/// The environment variable that picks the hook of a new install.
pub const HOOK_ENV: &str = "PCN_IPTABLES_TC_HOOK";
/// The record of an install on the classic hook: the interfaces whose `clsact` qdisc we made.
pub const RECORD: &str = "PCN_TC_CLASSIC";
/// The names of our classic filters (the entry programs' names).
const NAMES: [&str; 2] = ["pcn_egress", "pcn_answer"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Tcx,
    Classic,
}

impl Hook {
    fn describe(self) -> &'static str {
        match self {
            Hook::Tcx => "TCX link",
            Hook::Classic => "clsact qdisc and cls_bpf filter",
        }
    }
}

/// The hook a new install takes, decided once per invocation.
fn preferred() -> Result<Hook> {
    static HOOK: OnceLock<Result<Hook, String>> = OnceLock::new();
    HOOK.get_or_init(|| match std::env::var(HOOK_ENV).as_deref() {
        Ok("classic") => Ok(Hook::Classic),
        Ok("tcx") => Ok(Hook::Tcx),
        Ok("auto" | "") | Err(_) => Ok(
            // Kernels without TCX refuse to query it (EINVAL); any failure means no TCX here.
            if SchedClassifier::query_tcx("lo", TcAttachType::Ingress).is_ok() {
                Hook::Tcx
            } else {
                Hook::Classic
            },
        ),
        Ok(other) => Err(format!("{HOOK_ENV}={other}: expected tcx, classic or auto")),
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// The hook of the install in `dir`: the one it has, or the one a new install takes.
pub fn hook(dir: &Path) -> Result<Hook> {
    let names: Vec<String> = std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    );
    hook_of(&names)
}

/// `hook`, from the names in the install's directory.
pub fn hook_of(names: &[String]) -> Result<Hook> {
    if names.iter().any(|n| n == RECORD) {
        return Ok(Hook::Classic);
    }
    let tcx = names
        .iter()
        .any(|n| n.starts_with("tc-") || n.starts_with("tci-"));
    if tcx { Ok(Hook::Tcx) } else { preferred() }
}

/// What to say when attaching `name` to `link`'s `hook` fails.
pub fn attach_failed(hook: Hook, name: &str, link: &Link, attach_type: TcAttachType) -> String {
    let side = match attach_type {
        TcAttachType::Egress => "egress",
        _ => "ingress",
    };
    let other = match hook {
        Hook::Tcx => format!("; {HOOK_ENV}=classic uses the classic hook"),
        Hook::Classic => String::new(),
    };
    format!(
        "attaching {name} to the TC {side} hook of interface {} ({}) on Linux {}{other}",
        link.name,
        hook.describe(),
        super::load::kernel_release(),
    )
}

/// Makes the record of a classic install in `dir`, unless there.
pub fn ensure_record(dir: &Path) -> Result<()> {
    let path = dir.join(RECORD);
    if path.exists() {
        return Ok(());
    }
    const MAP_TYPE_HASH: u32 = 1;
    let map = sys::map_create(RECORD, MAP_TYPE_HASH, 4, 4, 1 << 16, sys::F_NO_PREALLOC)
        .context("creating the record of classic TC attachments")?;
    match sys::obj_pin(std::os::fd::AsFd::as_fd(&map), &path) {
        // Another thread of this invocation made it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r.with_context(|| format!("pinning {}", path.display())),
    }
}

fn record(dir: &Path) -> Result<Option<HashMap<MapData, u32, u32>>> {
    let path = dir.join(RECORD);
    if !path.exists() {
        return Ok(None);
    }
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Some(HashMap::try_from(Map::HashMap(data))?))
}

/// Forgets the interfaces of the record that are gone.
pub fn prune(dir: &Path, links: &[Link]) -> Result<()> {
    if let Some(mut record) = record(dir)? {
        let gone: Vec<u32> = record
            .keys()
            .flatten()
            .filter(|i| !links.iter().any(|l| l.ifindex == *i))
            .collect();
        for ifindex in gone {
            record.remove(&ifindex)?;
        }
    }
    Ok(())
}

/// One entry of a dump of an interface's filters.
#[derive(Debug)]
struct Filter {
    priority: u16,
    handle: u32,
    kind: String,
    name: Option<String>,
    prog_id: Option<u32>,
}

impl Filter {
    /// Ours: a cls_bpf filter at our preference and handle, named after an entry program.
    fn ours(&self) -> bool {
        self.priority == PRIORITY
            && self.handle == HANDLE
            && self.kind == "bpf"
            && self.name.as_deref().is_some_and(|n| NAMES.contains(&n))
    }
}

fn parent(attach_type: TcAttachType) -> NlHandle {
    NlHandle {
        major: u16::MAX,
        minor: match attach_type {
            TcAttachType::Egress => NlHandle::MIN_EGRESS,
            _ => NlHandle::MIN_INGRESS,
        },
    }
}

impl Rtnl {
    /// `request`'s answers that are filters or qdiscs.
    fn request_tc(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<Vec<TcMessage>> {
        Ok(self
            .request(message, flags)?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewTrafficFilter(m)
                | RouteNetlinkMessage::NewQueueDiscipline(m) => Some(m),
                _ => None,
            })
            .collect())
    }

    /// The filters on one side (`attach_type`) of `ifindex`'s clsact qdisc (none without one).
    fn filters(&mut self, ifindex: u32, attach_type: TcAttachType) -> Result<Vec<Filter>> {
        let mut message = TcMessage::with_index(ifindex as i32);
        message.header.parent = parent(attach_type);
        let answers = self
            .request_tc(RouteNetlinkMessage::GetTrafficFilter(message), NLM_F_DUMP)
            .context("listing TC filters")?;
        Ok(answers
            .into_iter()
            // The others are the heads of each preference's list of filters.
            .filter(|m| m.header.handle != NlHandle::UNSPEC)
            .map(|m| {
                let mut filter = Filter {
                    priority: (m.header.info >> 16) as u16,
                    handle: m.header.handle.into(),
                    kind: String::new(),
                    name: None,
                    prog_id: None,
                };
                for attribute in m.attributes {
                    match attribute {
                        TcAttribute::Kind(kind) => filter.kind = kind,
                        TcAttribute::Options(options) => {
                            for option in options {
                                match option {
                                    TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => {
                                        filter.name = Some(n)
                                    }
                                    TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => {
                                        filter.prog_id = Some(id)
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
                filter
            })
            .collect())
    }

    /// The kind of the qdisc in `ifindex`'s ingress slot (`clsact`, `ingress`), if any.
    fn ingress_qdisc(&mut self, ifindex: u32) -> Result<Option<String>> {
        let mut message = TcMessage::with_index(ifindex as i32);
        message.header.parent = NlHandle::INGRESS;
        let answers = match self.request_tc(
            RouteNetlinkMessage::GetQueueDiscipline(message),
            NLM_F_ECHO | NLM_F_ACK,
        ) {
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.raw_os_error() == Some(libc::ENOENT)) =>
            {
                return Ok(None);
            }
            r => r.context("reading the ingress qdisc")?,
        };
        Ok(answers
            .into_iter()
            .flat_map(|m| m.attributes)
            .find_map(|a| match a {
                TcAttribute::Kind(kind) => Some(kind),
                _ => None,
            })
            .filter(|kind| kind != "noop"))
    }

    /// Deletes `ifindex`'s clsact qdisc (not an `ingress` one: the kind must match).
    fn delete_clsact(&mut self, ifindex: u32) -> Result<()> {
        let mut message = TcMessage::with_index(ifindex as i32);
        message.header.parent = NlHandle::CLSACT;
        message.header.handle = NlHandle {
            major: u16::MAX,
            minor: 0,
        };
        message.attributes.push(TcAttribute::Kind("clsact".into()));
        self.request_tc(RouteNetlinkMessage::DelQueueDiscipline(message), NLM_F_ACK)
            .map(drop)
            .context("deleting a clsact qdisc")
    }
}

/// What one side of an interface needs before it runs the program whose id is `prog_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// Our filter is there but runs another program (an earlier install's): replace it.
    Replace,
    Create,
}

/// What each of `wanted` (program name and id, side, interface) needs.
pub fn needs(wanted: &[(&str, u32, TcAttachType, &Link)]) -> Result<Vec<Needs>> {
    let mut rtnl = Rtnl::open()?;
    wanted
        .iter()
        .map(|(name, prog_id, attach_type, link)| {
            let filters = rtnl.filters(link.ifindex, *attach_type)?;
            let same = |f: &Filter| f.ours() && f.name.as_deref() == Some(*name);
            Ok(
                match filters
                    .iter()
                    .find(|f| f.priority == PRIORITY && f.handle == HANDLE)
                {
                    None => Needs::Create,
                    Some(f) if same(f) && f.prog_id == Some(*prog_id) => Needs::Nothing,
                    Some(f) if same(f) => Needs::Replace,
                    Some(f) => bail!(
                        "interface {}: preference {PRIORITY} handle {HANDLE} of its TC hook is \
                         taken by another filter ({} {}), which pcn-iptables needs",
                        link.name,
                        f.kind,
                        f.name.as_deref().unwrap_or("")
                    ),
                },
            )
        })
        .collect()
}

/// Attaches `prog` to `link`'s side `attach_type` as our classic filter, adding the clsact
/// qdisc (recorded in `dir`) where there is none.
pub fn attach(
    dir: &Path,
    prog: &mut SchedClassifier,
    attach_type: TcAttachType,
    link: &Link,
    needs: Needs,
) -> Result<()> {
    let handle = TcHandle::from(HANDLE);
    let id = match needs {
        Needs::Nothing => return Ok(()),
        Needs::Replace => prog.attach_to_link(SchedClassifierLink::attached(
            &link.name,
            attach_type,
            PRIORITY,
            handle,
            None,
        )?)?,
        Needs::Create => {
            match tc::qdisc_add_clsact(&link.name) {
                Ok(()) => {
                    if let Some(mut record) = record(dir)? {
                        record.insert(link.ifindex, 1, 0)?;
                    }
                }
                // Someone's clsact (ours if recorded): fine. An `ingress` qdisc would take
                // the egress filter on its ingress.
                Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {
                    match Rtnl::open()?.ingress_qdisc(link.ifindex)?.as_deref() {
                        Some("clsact") => {}
                        other => bail!(
                            "the interface has a qdisc {} where the clsact qdisc goes: \
                             `tc qdisc del dev {} {0}` makes room",
                            other.unwrap_or("?"),
                            link.name
                        ),
                    }
                }
                Err(e) => return Err(e).context("adding a clsact qdisc"),
            }
            prog.attach_with_options(
                &link.name,
                attach_type,
                TcAttachOptions::Netlink(NlOptions {
                    priority: PRIORITY,
                    handle,
                    classid: None,
                }),
            )?
        }
    };
    // Dropping the link would delete the filter: it is to stay after we exit.
    std::mem::forget(prog.take_link(id)?);
    Ok(())
}

/// Deletes our filters from the sides `sides` of `link`; whether other filters are there.
fn delete_ours(rtnl: &mut Rtnl, link: &Link, sides: &[TcAttachType]) -> Result<bool> {
    let mut others = false;
    for attach_type in sides {
        for filter in rtnl.filters(link.ifindex, *attach_type)? {
            if !filter.ours() {
                others = true;
                continue;
            }
            match SchedClassifierLink::attached(
                &link.name,
                *attach_type,
                filter.priority,
                TcHandle::from(filter.handle),
                None,
            )?
            .detach()
            {
                // Both sides list the one block of an `ingress` qdisc: deleted already.
                Err(aya::programs::ProgramError::NetlinkError(e))
                    if e.raw_os_error() == Some(libc::ENOENT) => {}
                r => r.with_context(|| format!("deleting the TC filter of {}", link.name))?,
            }
        }
    }
    Ok(others)
}

/// Deletes our classic filters from `wanted` (side, interface): after TCX links took their
/// place, those of an install whose state is lost.
pub fn delete_stale(wanted: &[(TcAttachType, &Link)]) -> Result<()> {
    let mut rtnl = Rtnl::open()?;
    for (attach_type, link) in wanted {
        delete_ours(&mut rtnl, link, &[*attach_type])?;
    }
    Ok(())
}

/// Deletes our classic filters from every interface of the namespace, and the clsact qdiscs
/// that the record in `dir` says we made, once they hold no other filter.
pub fn remove(dir: &Path, links: &[Link]) -> Result<()> {
    let made: HashSet<u32> = match record(dir)? {
        Some(record) => record.keys().flatten().collect(),
        None => HashSet::new(),
    };
    let mut rtnl = Rtnl::open()?;
    for link in links {
        let others = delete_ours(
            &mut rtnl,
            link,
            &[TcAttachType::Ingress, TcAttachType::Egress],
        )?;
        if made.contains(&link.ifindex) && !others {
            rtnl.delete_clsact(link.ifindex)
                .with_context(|| format!("interface {}", link.name))?;
        }
    }
    Ok(())
}
