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
use aya::{
    Ebpf,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink, tc::TcAttachOptions,
    },
};
use aya_obj::programs::XdpAttachType;

use super::generation::{EGRESS_PIN, INGRESS_PIN};
use crate::compile::Link;

/// Pin of `pcn_answer`.
pub const ANSWER_PIN: &str = "prog-answer";
/// Kinds of link pins (`KIND-IFINDEX`).
const KINDS: [&str; 3] = ["xdp", "tc", "tci"];

/// Loads and pins `pcn_answer` from `ebpf` (the object being set up) unless it is pinned
/// already: installs made before it existed get it with the first build that has it.
pub fn load(ebpf: &mut Ebpf, dir: &Path) -> Result<()> {
    let pin = dir.join(ANSWER_PIN);
    if pin.exists() {
        return Ok(());
    }
    let prog: &mut SchedClassifier = ebpf
        .program_mut("pcn_answer")
        .context("pcn_answer")?
        .try_into()?;
    prog.load()
        .context("loading the TC ingress program (REJECT's answers)")?;
    prog.pin(&pin)
        .with_context(|| format!("pinning {}", pin.display()))
}

/// Attaches the entry programs to every interface that lacks them, forgets the links of
/// interfaces that are gone, and refreshes the data plane's settings.
pub fn attach(dir: &Path, links: &[Link]) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some((kind, index)) = name.split_once('-') else {
            continue;
        };
        if KINDS.contains(&kind)
            && index
                .parse::<u32>()
                .is_ok_and(|i| !links.iter().any(|l| l.ifindex == i))
        {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    let mut xdp: Option<Xdp> = None;
    let mut egress: Option<SchedClassifier> = None;
    let mut answer: Option<SchedClassifier> = None;
    for link in links {
        // Before XDP, which may mark answers for it from its first packet.
        let pin = dir.join(format!("tci-{}", link.ifindex));
        if !pin.exists() {
            attach_tc(
                &mut answer,
                dir,
                ANSWER_PIN,
                link,
                TcAttachType::Ingress,
                &pin,
            )?;
        }
        let pin = dir.join(format!("xdp-{}", link.ifindex));
        if !pin.exists() {
            if xdp.is_none() {
                let entry = dir.join(INGRESS_PIN);
                xdp = Some(
                    Xdp::from_pin(&entry, XdpAttachType::Interface)
                        .with_context(|| format!("opening {}", entry.display()))?,
                );
            }
            let prog = xdp.as_mut().context("XDP entry")?;
            let id = prog
                .attach_to_if_index(link.ifindex, XdpMode::Default)
                .with_context(|| format!("attaching XDP to {}", link.name))?;
            FdLink::try_from(prog.take_link(id)?)?.pin(&pin)?;
        }
        let pin = dir.join(format!("tc-{}", link.ifindex));
        if !pin.exists() {
            attach_tc(
                &mut egress,
                dir,
                EGRESS_PIN,
                link,
                TcAttachType::Egress,
                &pin,
            )?;
        }
    }
    super::settings::refresh(dir)
}

/// Attaches the TC program pinned as `entry` (opened into `prog` the first time) to `link`
/// by TCX, and pins the link as `pin`.
fn attach_tc(
    prog: &mut Option<SchedClassifier>,
    dir: &Path,
    entry: &str,
    link: &Link,
    hook: TcAttachType,
    pin: &Path,
) -> Result<()> {
    if prog.is_none() {
        let entry = dir.join(entry);
        *prog = Some(
            SchedClassifier::from_pin(&entry)
                .with_context(|| format!("opening {}", entry.display()))?,
        );
    }
    let prog = prog.as_mut().context("TC program")?;
    let id = prog
        .attach_with_options(
            &link.name,
            hook,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .with_context(|| format!("attaching TC {hook:?} to {}", link.name))?;
    FdLink::try_from(prog.take_link(id)?)?.pin(pin)?;
    Ok(())
}
