//! Timing of a change's phases (`PCN_IPTABLES_TIMING`).

/// Prints how long a phase of a change took on stderr, when `PCN_IPTABLES_TIMING` is set.
pub struct Timer(pub &'static str, pub std::time::Instant);

/// When the command started.
pub static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl Drop for Timer {
    fn drop(&mut self) {
        if std::env::var_os("PCN_IPTABLES_TIMING").is_some() {
            let at = START.get().map(|s| s.elapsed()).unwrap_or_default();
            eprintln!("{}: {:?} (done at {:?})", self.0, self.1.elapsed(), at);
        }
    }
}
