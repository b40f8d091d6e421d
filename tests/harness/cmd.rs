//! Running external commands with a deadline and captured output.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished (or killed) command left behind.
#[derive(Clone, Debug, Default)]
pub struct Out {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The deadline ran out and the harness killed it.
    pub timed_out: bool,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole story unless the command exited 0.
    #[track_caller]
    pub fn expect_ok(self) -> Out {
        if !self.success() {
            panic!("command failed: {self}");
        }
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ", self.cmdline)?;
        if self.timed_out {
            write!(f, "timed out and was killed")?;
        } else if let Some(c) = self.code {
            write!(f, "exited {c}")?;
        } else {
            write!(f, "was killed by signal {:?}", self.signal)?;
        }
        if !self.stdout.is_empty() {
            write!(f, "\n--- stdout ---\n{}", self.stdout.trim_end())?;
        }
        if !self.stderr.is_empty() {
            write!(f, "\n--- stderr ---\n{}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

/// Shell-ish rendering of a command line (for messages only).
pub fn render(prog: &str, args: &[&str]) -> String {
    let mut s = prog.to_string();
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$!*?;&|<>()".contains(c)) {
            s.push('\'');
            s.push_str(&a.replace('\'', "'\\''"));
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Spawns `prog args` with stdin closed and stdout/stderr piped.
pub fn spawn(prog: &str, args: &[&str]) -> std::io::Result<Child> {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Waits for `child` (spawned by [`spawn`]) at most `timeout`, killing it when time runs out.
pub fn wait(mut child: Child, cmdline: String, timeout: Duration) -> Out {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t_out = thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = so.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(p) = se.as_mut() {
            let _ = p.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut sleep = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("waiting for `{cmdline}`: {e}"),
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    Out {
        cmdline,
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
        timed_out,
    }
}

/// Runs `prog args` to completion (or until `timeout`), capturing its output.
pub fn run_timeout(prog: &str, args: &[&str], timeout: Duration) -> Out {
    let cmdline = render(prog, args);
    match spawn(prog, args) {
        Ok(child) => wait(child, cmdline, timeout),
        Err(e) => Out {
            cmdline,
            code: Some(127),
            stderr: format!("cannot run {prog}: {e}"),
            ..Out::default()
        },
    }
}

/// [`run_timeout`] with a 60 s deadline.
pub fn run(prog: &str, args: &[&str]) -> Out {
    run_timeout(prog, args, Duration::from_secs(60))
}

/// [`run`], panicking unless it exits 0.
#[track_caller]
pub fn must(prog: &str, args: &[&str]) -> Out {
    run(prog, args).expect_ok()
}
