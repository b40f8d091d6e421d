//! Loading a program into the kernel, and saying clearly why the kernel refused it.
//!
//! The verifier log is asked for at the STATS level only: the error line and the counts, a
//! few hundred bytes. At the DEBUG level aya retries a failed load with ten times the buffer
//! each time, verifying the program again on every attempt: a program the verifier gives up
//! on would take minutes to be reported. `PCN_IPTABLES_VERIFIER_LOG=verbose` asks for the
//! whole log, and shows it whole, for whoever debugs the data plane.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use aya::{VerifierLogLevel, programs::ProgramError};

/// Lines of the verifier log an error shows.
const LOG_TAIL: usize = 12;

fn verbose() -> bool {
    std::env::var("PCN_IPTABLES_VERIFIER_LOG").as_deref() == Ok("verbose")
}

/// The verifier log level programs are loaded with.
pub fn log_level() -> VerifierLogLevel {
    if verbose() {
        VerifierLogLevel::DEBUG | VerifierLogLevel::STATS
    } else {
        VerifierLogLevel::STATS
    }
}

/// Loads the XDP or TC program `name`.
pub fn program(name: &str, prog: &mut aya::programs::Program) -> Result<()> {
    let started = Instant::now();
    let loaded = match prog {
        aya::programs::Program::Xdp(p) => p.load(),
        aya::programs::Program::SchedClassifier(p) => p.load(),
        _ => return Err(anyhow!("{name}: not an XDP or TC program")),
    };
    loaded.map_err(|e| refused(name, e, started.elapsed(), &kernel_release()))
}

/// The running kernel's release, for messages.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The error for a program the kernel did not load: which program, which kernel, the last
/// lines of the verifier's log, and what to do about it.
fn refused(name: &str, e: ProgramError, took: Duration, kernel: &str) -> anyhow::Error {
    let ProgramError::LoadError {
        io_error,
        verifier_log,
    } = e
    else {
        return anyhow::Error::new(e).context(format!("loading {name}"));
    };
    let log = verifier_log.to_string();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown = if verbose() { lines.len() } else { LOG_TAIL };
    let tail = &lines[lines.len().saturating_sub(shown)..];
    let mut text = format!(
        "the kernel (Linux {kernel}) refused the eBPF program {name} after {:.1} s: {io_error}",
        took.as_secs_f64()
    );
    if !tail.is_empty() {
        text.push_str("\nverifier log, last lines:");
        for line in tail {
            text.push_str("\n    ");
            text.push_str(line);
        }
    }
    text.push_str(
        "\nNothing was changed. pcn-iptables supports Linux 6.1 and newer (see the README's \
         supported kernels); please report this with the lines above \
         (PCN_IPTABLES_VERIFIER_LOG=verbose gives the whole verifier log).",
    );
    anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_error(log: &str) -> ProgramError {
        ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EACCES),
            verifier_log: aya_obj::VerifierLog::new(log.into()),
        }
    }

    #[test]
    fn a_refusal_names_program_kernel_and_the_log_tail() {
        let log: String = (0..40).map(|i| format!("{i}: insn\n")).collect::<String>()
            + "R4 min value is negative, either use unsigned or 'var &= const'\n\
               processed 14681 insns (limit 1000000)\n";
        let text = refused(
            "pcn_tc_classify",
            load_error(&log),
            Duration::from_millis(2370),
            "6.1.0-57-amd64",
        )
        .to_string();
        assert!(text.starts_with(
            "the kernel (Linux 6.1.0-57-amd64) refused the eBPF program pcn_tc_classify after 2.4 s"
        ));
        assert!(text.contains("    R4 min value is negative"));
        assert!(text.contains("    processed 14681 insns"));
        // Only the tail: 12 lines, the first of them insn 30.
        assert!(text.contains("    30: insn") && !text.contains("    29: insn"));
        assert!(text.contains("Nothing was changed"));
    }

    #[test]
    fn other_failures_keep_their_own_message() {
        let text = format!(
            "{:#}",
            refused("x", ProgramError::NotLoaded, Duration::ZERO, "6.1")
        );
        assert_eq!(text, "loading x: the program is not loaded");
    }
}
