//! The entry programs on every interface of the namespace, each by a pinned link (`KIND-IFINDEX`
//! in the namespace's directory) that keeps it attached after the command exits:
//! - `xdp-`: `pcn_ingress` (XDP), INPUT and FORWARD;
//! - `tc-`: `pcn_egress` (TC egress, TCX), OUTPUT;
//! - `tci-`: `pcn_answer` (TC ingress, TCX), which sends REJECT's answers built at XDP back
//!   out of the interface they came in on (see the eBPF object's `reject` module).
//!
//! `--uninstall` removes the directory, so the links go with it.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::programs::{
    LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink, tc::TcAttachOptions,
};
use aya_obj::programs::XdpAttachType;

use super::generation::{EGRESS_PIN, INGRESS_PIN};
use crate::compile::Link;

/// Pin of `pcn_answer`.
pub const ANSWER_PIN: &str = "prog-answer";

/// The entry programs: name in the eBPF object, pin in the namespace's directory, and the
/// kind of their link pins.
pub const ENTRIES: [(&str, &str, &str); 3] = [
    ("pcn_answer", ANSWER_PIN, "tci"),
    ("pcn_ingress", INGRESS_PIN, "xdp"),
    ("pcn_egress", EGRESS_PIN, "tc"),
];

fn link_pin(dir: &Path, kind: &str, link: &Link) -> std::path::PathBuf {
    dir.join(format!("{kind}-{}", link.ifindex))
}

/// Attaches the pinned entry program of `kind` to `link`, and pins the link.
fn attach_one(dir: &Path, kind: &str, link: &Link) -> Result<()> {
    let entry = ENTRIES
        .iter()
        .find(|(_, _, k)| *k == kind)
        .map(|(_, pin, _)| dir.join(pin))
        .context("no such entry program")?;
    let opening = || format!("opening {}", entry.display());
    let attached = if kind == "xdp" {
        let mut prog = Xdp::from_pin(&entry, XdpAttachType::Interface).with_context(opening)?;
        let id = prog
            .attach_to_if_index(link.ifindex, XdpMode::Default)
            .with_context(|| format!("attaching XDP to {}", link.name))?;
        FdLink::try_from(prog.take_link(id)?)?
    } else {
        let hook = if kind == "tc" {
            TcAttachType::Egress
        } else {
            TcAttachType::Ingress
        };
        let mut prog = SchedClassifier::from_pin(&entry).with_context(opening)?;
        let id = prog
            .attach_with_options(
                &link.name,
                hook,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .with_context(|| format!("attaching TC {hook:?} to {}", link.name))?;
        FdLink::try_from(prog.take_link(id)?)?
    };
    attached.pin(link_pin(dir, kind, link))?;
    Ok(())
}

/// Attaches the entry programs of `kinds` to every interface that lacks them. Each attachment
/// waits for a grace period: made at once, from one thread each, they share one.
pub fn attach_kinds(dir: &Path, kinds: &[&str], links: &[Link]) -> Result<()> {
    std::thread::scope(|s| {
        let attaching: Vec<_> = kinds
            .iter()
            .flat_map(|kind| links.iter().map(move |link| (*kind, link)))
            .filter(|(kind, link)| !link_pin(dir, kind, link).exists())
            .map(|(kind, link)| s.spawn(move || attach_one(dir, kind, link)))
            .collect();
        attaching.into_iter().try_for_each(|a| {
            a.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("attaching")))
        })
    })
}

/// Attaches the entry programs to every interface that lacks them, forgets the links of
/// interfaces that are gone, and refreshes the data plane's settings.
pub fn attach(dir: &Path, links: &[Link]) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some((kind, index)) = name.split_once('-') else {
            continue;
        };
        if ENTRIES.iter().any(|(_, _, k)| *k == kind)
            && index
                .parse::<u32>()
                .is_ok_and(|i| !links.iter().any(|l| l.ifindex == i))
        {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    // REJECT's answers first: XDP may mark them from its first packet.
    attach_kinds(dir, &["tci"], links)?;
    attach_kinds(dir, &["xdp", "tc"], links)?;
    super::settings::refresh(dir)
}
