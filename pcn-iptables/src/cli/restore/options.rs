//! iptables-restore's flags, with its messages.

use super::{at_line, print};
use crate::{
    cli::version,
    error::{Error, OTHER_PROBLEM, Result},
    model::Wait,
    syntax::restore::{Flags, RESTORE_OPTIONS, scan_int, scan_uint},
};

pub(super) struct Options {
    pub(super) counters: bool,
    pub(super) verbose: usize,
    pub(super) test: bool,
    pub(super) noflush: bool,
    pub(super) wait: Wait,
    /// `-T`: restore only this table.
    pub(super) table: Option<String>,
    pub(super) file: Option<String>,
}

/// The flags, acted on in order as iptables-restore does; `None` when one of them (`-h`, `-V`)
/// was all there was to do.
pub(super) fn parse_options(prog: &str, args: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        counters: false,
        verbose: 0,
        test: false,
        noflush: false,
        wait: Wait::NoWait,
        table: None,
        file: None,
    };
    let mut interval = false;
    let mut flags = Flags::new(prog, &RESTORE_OPTIONS, args);
    while let Some(flag) = flags.next() {
        let (c, value) = flag.map_err(|message| {
            Error::raw(
                OTHER_PROBLEM,
                format!("{message}\nTry `{prog} -h' for more information.\n"),
            )
        })?;
        // Values given apart (`-w 5`) are taken as iptables' `parse_wait_time` takes them.
        let mut value = || value.or_else(|| flags.take_value());
        match c {
            'b' => eprintln!("-b/--binary option is not implemented"),
            'c' => options.counters = true,
            'v' => options.verbose += 1,
            'V' => {
                print(&version_line(prog, false));
                return Ok(None);
            }
            't' => options.test = true,
            'h' => {
                eprint!("{}", usage(prog));
                return Ok(None);
            }
            'n' => options.noflush = true,
            'w' => options.wait = wait_time(value()).map_err(|e| at_line(e, prog, 0))?,
            'W' => {
                wait_interval(value()).map_err(|e| at_line(e, prog, 0))?;
                interval = true;
            }
            'T' => options.table = value().map(str::to_string),
            // -M names a modprobe program: pcn-iptables loads no kernel modules.
            _ => {}
        }
    }
    match flags.operands().as_slice() {
        [] => {}
        [file] => options.file = Some(file.to_string()),
        _ => {
            return Err(Error::raw(
                OTHER_PROBLEM,
                "Unknown arguments found on commandline\n",
            ));
        }
    }
    if interval && options.wait == Wait::NoWait {
        return Err(Error::raw(
            OTHER_PROBLEM,
            "Option --wait-interval requires option --wait\n",
        ));
    }
    Ok(Some(options))
}

/// iptables' `parse_wait_time`: `-w` alone waits for ever, `-w 0` not at all.
fn wait_time(value: Option<&str>) -> Result<Wait> {
    Ok(match value.map(scan_int) {
        None => Wait::Forever,
        Some(None) => return Err(Error::parameter("wait seconds not numeric")),
        Some(Some(0)) => Wait::NoWait,
        Some(Some(seconds)) if seconds > 0 => Wait::Seconds(seconds as u64),
        // A negative count becomes a never-ending alarm in iptables.
        Some(Some(_)) => Wait::Forever,
    })
}

/// iptables' `parse_wait_interval`: checked, then ignored (the lock is polled).
fn wait_interval(value: Option<&str>) -> Result<()> {
    let value = value.ok_or_else(|| Error::parameter("wait interval value required"))?;
    match scan_uint(value) {
        None => Err(Error::parameter("wait interval not numeric")),
        Some(usec) if usec > 999_999 => Err(Error::parameter(format!(
            "too long usec wait {usec} > 999999 usec"
        ))),
        Some(_) => {
            eprintln!("Ignoring deprecated --wait-interval option.");
            Ok(())
        }
    }
}

/// What `-V` prints (`! -V` on a command line: `negated`).
pub(in crate::cli) fn version_line(prog: &str, negated: bool) -> String {
    if negated {
        format!("Not {} ;-)\n", version())
    } else {
        format!("{prog} v{}\n", version())
    }
}

fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-c] [-v] [-V] [-t] [-h] [-n] [-w secs] [-W usecs] [-T table] [-M command] [file]\n\
         \t   [ --counters ]\n\
         \t   [ --verbose ]\n\
         \t   [ --version]\n\
         \t   [ --test ]\n\
         \t   [ --help ]\n\
         \t   [ --noflush ]\n\
         \t   [ --wait=<seconds>\n\
         \t   [ --table=<TABLE> ]\n\
         \t   [ --modprobe=<command> ]\n"
    )
}
