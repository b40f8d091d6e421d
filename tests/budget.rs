//! The verifier budget: a first install in a fresh namespace loads every program, and none may
//! cost the verifier more than [`MAX_INSNS`] processed instructions (`verified_insns`; the
//! kernel gives up at 1,000,000 and kernels differ widely, so we stay far below), nor may the
//! install take longer than `$PCN_INSTALL_SECS_MAX` seconds (default [`DEFAULT_INSTALL_SECS`];
//! `off` only prints the time, for slow machines such as QEMU without KVM).
//!
//! Prints one line per program, `budget: <program> <verified_insns>`, and
//! `budget: install <seconds>`, for scripts/kernel-matrix.sh to collect.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aya::programs::ProgramInfo;
use pcn_iptables_tests::{Fw, Lab};

/// Processed instructions allowed per program.
const MAX_INSNS: u32 = 200_000;
/// The target is 0.5 s; ten times that leaves room for a loaded 2-core CI machine running
/// other tests at the same time.
const DEFAULT_INSTALL_SECS: f64 = 5.0;
/// Full program names: the kernel keeps only their first 15 characters.
const PROGRAMS: [&str; 5] = [
    "pcn_xdp_classify",
    "pcn_tc_classify",
    "pcn_ingress",
    "pcn_egress",
    "pcn_answer",
];

#[test]
fn verified_insns_and_install_time() {
    let mut lab = Lab::new(Fw::pcn());
    let host = lab.ns("host");
    // `-m limit` makes the compiler use every kind of classifier code.
    let rule = "-A INPUT -p tcp --dport 22 -m limit --limit 3/min -j ACCEPT";
    let start = Instant::now();
    let out = lab.ipt(&host, rule);
    let secs = start.elapsed().as_secs_f64();
    println!("budget: install {secs:.2}");
    assert!(
        out.success(),
        "first install failed after {secs:.1} s: {out}"
    );

    let mut found = Vec::new();
    for pin in program_pins(&host.state_dir()) {
        let info = ProgramInfo::from_pin(&pin).unwrap_or_else(|e| panic!("{}: {e}", pin.display()));
        let short = info.name_as_str().unwrap_or_default().to_string();
        let name = PROGRAMS
            .iter()
            .find(|p| p.starts_with(&short) && !short.is_empty())
            .map_or(short, |p| p.to_string());
        let insns = info.verified_instruction_count().unwrap_or(0);
        println!("budget: {name} {insns}");
        found.push((name, insns));
    }
    for p in ["pcn_xdp_classify", "pcn_tc_classify"] {
        assert!(
            found.iter().any(|(n, _)| n == p),
            "{p} not found: {found:?}"
        );
    }
    let over: Vec<_> = found.iter().filter(|(_, i)| *i > MAX_INSNS).collect();
    assert!(
        over.is_empty(),
        "over {MAX_INSNS} verified instructions: {over:?}"
    );

    let max = std::env::var("PCN_INSTALL_SECS_MAX").unwrap_or_default();
    if max != "off" {
        let max = max.parse().unwrap_or(DEFAULT_INSTALL_SECS);
        assert!(
            secs <= max,
            "first install took {secs:.2} s (at most {max} s)"
        );
    }
}

/// The pinned programs of a state directory: entry programs (`prog-*`) and, in each build's
/// directory, the classifiers (`classify-*`).
fn program_pins(dir: &Path) -> Vec<PathBuf> {
    let mut pins = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else if name.starts_with("prog-") || name.starts_with("classify-") {
                pins.push(e.path());
            }
        }
    }
    pins.sort();
    pins
}
