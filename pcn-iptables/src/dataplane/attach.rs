//! The entry programs on every interface of the namespace:
//! - `pcn_ingress` (XDP), INPUT and FORWARD, by a pinned link `xdp-IFINDEX` in the namespace's
//!   directory that keeps it attached after the command exits;
//! - `pcn_egress` (TC egress), OUTPUT;
//! - `pcn_answer` (TC ingress), which sends REJECT's answers built at XDP back out of the
//!   interface they came in on (see the eBPF object's `reject` module).
//!
//! The TC programs go by TCX links, pinned as `tc-IFINDEX` and `tci-IFINDEX`, or by classic
//! cls_bpf filters on kernels without TCX (see `tc`).
//!
//! `--uninstall` deletes the classic filters, then removes the directory, so the links go with
//! it.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::programs::{
    LinkOrder, ProgramInfo, SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink,
    tc::TcAttachOptions,
};
use aya_obj::programs::XdpAttachType;

use super::tc::{self, Hook, Needs};
use crate::compile::Link;

/// Pins of the entry programs in the namespace's directory. The links keep them attached; the
/// pins let later changes attach them to new interfaces, and tools run them on crafted packets
/// (the benchmark's BPF_PROG_TEST_RUN) or profile them.
pub const INGRESS_PIN: &str = "prog-ingress";
pub const EGRESS_PIN: &str = "prog-egress";
/// Pin of `pcn_answer`.
pub const ANSWER_PIN: &str = "prog-answer";

/// The entry programs: name in the eBPF object, pin in the namespace's directory, and the
/// kind of their link pins.
pub const ENTRIES: [(&str, &str, &str); 3] = [
    ("pcn_answer", ANSWER_PIN, "tci"),
    ("pcn_ingress", INGRESS_PIN, "xdp"),
    ("pcn_egress", EGRESS_PIN, "tc"),
];

/// The pin of the link of the entry program of `kind` on `link`.
fn link_pin(dir: &Path, kind: &str, link: &Link) -> std::path::PathBuf {
    dir.join(format!("{kind}-{}", link.ifindex))
}

fn entry_pin(dir: &Path, kind: &str) -> Result<std::path::PathBuf> {
    ENTRIES
        .iter()
        .find(|(_, _, k)| *k == kind)
        .map(|(_, pin, _)| dir.join(pin))
        .context("no such entry program")
}

fn attach_type(kind: &str) -> TcAttachType {
    if kind == "tc" {
        TcAttachType::Egress
    } else {
        TcAttachType::Ingress
    }
}

/// Attaches the pinned entry program of `kind` to `link`: by a link it pins (XDP, TCX), or by
/// a classic TC filter (`needs` says what is there already).
fn attach_one(dir: &Path, kind: &str, link: &Link, hook: Hook, needs: Needs) -> Result<()> {
    let entry = entry_pin(dir, kind)?;
    let opening = || format!("opening {}", entry.display());
    let attached = if kind == "xdp" {
        let mut prog = Xdp::from_pin(&entry, XdpAttachType::Interface).with_context(opening)?;
        // Generic mode runs on the skb, just before TC ingress: where XDP cannot give a frame
        // metadata, pcn_answer takes what XDP hands it there (see the eBPF crate's `meta`).
        let mode = match super::settings::xdp_adjusts_meta() {
            true => XdpMode::Default,
            false => XdpMode::Skb,
        };
        let id = prog
            .attach_to_if_index(link.ifindex, mode)
            .with_context(|| format!("attaching XDP to {}", link.name))?;
        FdLink::try_from(prog.take_link(id)?)?
    } else {
        let attach_type = attach_type(kind);
        let mut prog = SchedClassifier::from_pin(&entry).with_context(opening)?;
        let failed = || {
            let name = prog_name(kind);
            tc::attach_failed(hook, name, link, attach_type)
        };
        if hook == Hook::Classic {
            return tc::attach(dir, &mut prog, attach_type, link, needs).with_context(failed);
        }
        let id = prog
            .attach_with_options(
                &link.name,
                attach_type,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .with_context(failed)?;
        FdLink::try_from(prog.take_link(id)?)?
    };
    attached.pin(link_pin(dir, kind, link))?;
    Ok(())
}

fn prog_name(kind: &str) -> &'static str {
    ENTRIES
        .iter()
        .find(|(_, _, k)| *k == kind)
        .map_or("", |(name, _, _)| name)
}

/// Attaches the entry programs of `kinds` to every interface that lacks them. Each attachment
/// waits for a grace period: made at once, from one thread each, they share one.
pub fn attach_kinds(dir: &Path, kinds: &[&str], links: &[Link]) -> Result<()> {
    let hook = if kinds.iter().any(|k| *k != "xdp") {
        tc::hook(dir)?
    } else {
        Hook::Tcx
    };
    attach_with(dir, kinds, links, hook, &|kind, link| {
        link_pin(dir, kind, link).exists()
    })
}

/// `attach_kinds` on `hook`; `pinned(kind, link)`: whether that link's pin exists.
fn attach_with(
    dir: &Path,
    kinds: &[&str],
    links: &[Link],
    hook: Hook,
    pinned: &dyn Fn(&str, &Link) -> bool,
) -> Result<()> {
    let (classic, linked): (Vec<&str>, Vec<&str>) = kinds
        .iter()
        .partition(|kind| **kind != "xdp" && hook == Hook::Classic);
    let mut todo: Vec<(&str, &Link, Needs)> = linked
        .iter()
        .flat_map(|kind| links.iter().map(move |link| (*kind, link, Needs::Create)))
        .filter(|(kind, link, _)| !pinned(kind, link))
        .collect();
    if !classic.is_empty() {
        tc::ensure_record(dir)?;
        let mut wanted = Vec::new();
        for kind in &classic {
            let entry = entry_pin(dir, kind)?;
            let id = ProgramInfo::from_pin(&entry)
                .with_context(|| format!("opening {}", entry.display()))?
                .id();
            let name = prog_name(kind);
            wanted.extend(links.iter().map(|link| (name, id, attach_type(kind), link)));
        }
        let needs = tc::needs(&wanted)?;
        let kinds = classic
            .iter()
            .flat_map(|kind| links.iter().map(move |_| *kind));
        todo.extend(
            kinds
                .zip(wanted.iter().zip(needs))
                .filter(|(_, (_, needs))| *needs != Needs::Nothing)
                .map(|(kind, ((_, _, _, link), needs))| (kind, *link, needs)),
        );
    }
    // New TCX links take the place of classic filters of ours left by a lost state, if any.
    let stale: Vec<(TcAttachType, &Link)> = todo
        .iter()
        .filter(|(kind, _, _)| *kind != "xdp" && hook == Hook::Tcx)
        .map(|(kind, link, _)| (attach_type(kind), *link))
        .collect();
    std::thread::scope(|s| {
        let attaching: Vec<_> = todo
            .into_iter()
            .map(|(kind, link, needs)| s.spawn(move || attach_one(dir, kind, link, hook, needs)))
            .collect();
        attaching.into_iter().try_for_each(|a| {
            a.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("attaching")))
        })
    })?;
    if stale.is_empty() {
        Ok(())
    } else {
        tc::delete_stale(&stale)
    }
}

/// Attaches the entry programs to every interface of `links` that lacks them, forgets the
/// links of interfaces that are gone (or became ports), and refreshes the data plane's
/// settings.
pub fn attach(dir: &Path, links: &[Link]) -> Result<()> {
    // One listing for it all: the directory holds a few dozen pins, and each listing of it
    // cost a command about as much as a map lookup a hundred times.
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let stale = name.split_once('-').is_some_and(|(kind, index)| {
            ENTRIES.iter().any(|(_, _, k)| *k == kind)
                && index
                    .parse::<u32>()
                    .is_ok_and(|i| !links.iter().any(|l| l.ifindex == i))
        });
        if stale {
            std::fs::remove_file(dir.join(&name))?;
        } else {
            names.push(name);
        }
    }
    tc::prune(dir, links)?;
    let pinned = |kind: &str, link: &Link| {
        let pin = format!("{kind}-{}", link.ifindex);
        names.contains(&pin)
    };
    // REJECT's answers first: XDP may mark them from its first packet. The hook is the same
    // for both: the first install's choice is recorded (classic) or pinned (TCX) by the first.
    let hook = tc::hook_of(&names)?;
    attach_with(dir, &["tci"], links, hook, &pinned)?;
    attach_with(dir, &["xdp", "tc"], links, hook, &pinned)?;
    super::settings::refresh(dir)
}
