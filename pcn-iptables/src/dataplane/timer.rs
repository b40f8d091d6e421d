//! `PCN_IPTABLES_TIMING=1`: how long the stages of a command take, on stderr.

/// Prints its stage's time when dropped, with the page faults the process took so far.
pub struct Timer(pub &'static str, pub std::time::Instant);

/// When the command started.
pub static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl Drop for Timer {
    fn drop(&mut self) {
        if std::env::var_os("PCN_IPTABLES_TIMING").is_some() {
            let at = START.get().map(|s| s.elapsed()).unwrap_or_default();
            // SAFETY: getrusage fills the struct it is given.
            let faults = unsafe {
                let mut usage: libc::rusage = std::mem::zeroed();
                libc::getrusage(libc::RUSAGE_SELF, &mut usage);
                usage.ru_minflt
            };
            // SAFETY: mallinfo2 only reads malloc's counters.
            let m = unsafe { libc::mallinfo2() };
            eprintln!(
                "{}: {:?} (done at {:?}, {faults} page faults, heap {} KiB, mmapped {} KiB, in use {} KiB)",
                self.0,
                self.1.elapsed(),
                at,
                m.arena / 1024,
                m.hblkhd / 1024,
                m.uordblks / 1024
            );
        }
    }
}
