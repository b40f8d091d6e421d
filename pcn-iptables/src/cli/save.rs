//! `pcn-iptables-save`, also answering as `iptables-save`: the tables in iptables-save's
//! format, byte for byte as iptables-legacy-save 1.8.9 prints them but for the tool's name,
//! version and dates in the two comment lines.
//!
//! iptables-legacy-save prints the tables the kernel has loaded in the network namespace, the
//! most recently loaded first, none in a fresh one; pcn-iptables records which tables its
//! commands opened (see `cli::record_loaded`) and prints those in that order. Where it was
//! never installed, it prints the filter table (which, as for `-L` and `-S`, always exists).
//! `-t TABLE` prints that table, loaded or not (and loads it); security is refused by name.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;

use super::{
    check_privileges, record_loaded,
    restore::{strerror, version_line},
};
use crate::{
    dataplane::{Dataplane, lock},
    error::{Error, OTHER_PROBLEM, PARAMETER_PROBLEM, Result},
    model::{Policy, Table, TableName, Wait},
    ruleset::rule_spec,
    syntax::restore::{Flags, SAVE_OPTIONS},
};

pub fn main(prog: &str, args: &[String]) -> Result<()> {
    let mut out: Box<dyn Write> = Box::new(std::io::stdout().lock());
    let mut table = None;
    let mut counters = false;
    let mut flags = Flags::new(prog, &SAVE_OPTIONS, args);
    // Acted on in order, as iptables-save does: `-d` dumps with what came before it.
    for flag in flags.by_ref() {
        let (c, value) = flag.map_err(|message| {
            Error::raw(
                OTHER_PROBLEM,
                format!("{message}\nLook at manual page `{prog}.8' for more information.\n"),
            )
        })?;
        match c {
            'b' => eprintln!("-b/--binary option is not implemented"),
            'c' => counters = true,
            't' => table = value,
            'f' => {
                let path = value.unwrap_or_default();
                out = Box::new(File::create(path).map_err(|e| {
                    Error::raw(
                        OTHER_PROBLEM,
                        format!("Failed to open file, error: {}\n", strerror(&e)),
                    )
                })?);
            }
            'd' => return save(&mut out, table, counters),
            'V' => {
                let _ = out.write_all(version_line(prog, false).as_bytes());
                return Ok(());
            }
            // -M names a modprobe program: pcn-iptables loads no kernel modules.
            _ => {}
        }
    }
    if !flags.operands().is_empty() {
        return Err(Error::raw(
            OTHER_PROBLEM,
            "Unknown arguments found on commandline\n",
        ));
    }
    save(&mut out, table, counters)
}

fn save(out: &mut dyn Write, table: Option<&str>, counters: bool) -> Result<()> {
    let only = match table.map(|name| (name, TableName::by_name(name))) {
        None => None,
        Some((_, Some(name))) if name.is_kept() => Some(name),
        Some((name, Some(_))) => {
            return Err(Error::versioned(
                PARAMETER_PROBLEM,
                format!("table `{name}' is not supported by pcn-iptables"),
            ));
        }
        Some((_, None)) => {
            return Err(Error::versioned(
                OTHER_PROBLEM,
                "Cannot initialize: Table does not exist (do you need to insmod?)",
            ));
        }
    };
    if check_privileges("filter").is_err() {
        return Err(Error::versioned(
            OTHER_PROBLEM,
            "Cannot initialize: Permission denied (you must be root)",
        ));
    }
    let dp = Dataplane::open()?;
    let filter = dp.read_table()?;
    let count = dp.counters()?;
    let loaded = match &filter.tables.loaded {
        // Never installed here (or a state from before the other tables).
        loaded if loaded.is_empty() => vec![TableName::Filter],
        loaded => loaded.clone(),
    };
    let mut text = String::new();
    for name in only.map_or(loaded, |name| vec![name]) {
        if name == TableName::Filter {
            save_table(&mut text, name, &filter, &count, counters);
        } else if let Some(counted) = filter.tables.counted(name) {
            save_table(&mut text, name, counted, &count, counters);
        } else {
            // Nothing counts in raw yet (nor in a nat or mangle table not stored with counter
            // slots of its own): their policies have what `-P -c` set.
            let table = filter.tables.get(name);
            let counts = filter.tables.counts_of(name);
            save_table(
                &mut text,
                name,
                &table,
                &table.policy_counts(&counts),
                counters,
            );
        }
    }
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) wanted no more.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Error::raw(
                OTHER_PROBLEM,
                format!("{}: {}\n", env!("CARGO_PKG_NAME"), strerror(&e)),
            ));
        }
        _ => {}
    }
    // iptables-legacy-save -t loads the table it prints.
    match only {
        Some(name) if !filter.tables.loaded.contains(&name) => {
            let _lock = lock::acquire(&dp.lock_path()?, &Wait::Forever)?;
            record_loaded(&dp, dp.read_state()?, name)
        }
        _ => Ok(()),
    }
}

/// One table, from its `# Generated by` line to its `# Completed on` line.
fn save_table(
    text: &mut String,
    name: TableName,
    table: &Table,
    count: &dyn Fn(u32) -> (u64, u64),
    counters: bool,
) {
    let _ = write!(
        text,
        "# Generated by pcn-iptables-save v{} on {}\n*{}\n",
        env!("CARGO_PKG_VERSION"),
        ctime(),
        name.name()
    );
    // Chains first, so that a restore creates them before rules jump to them.
    for chain in &table.chains {
        let _ = match chain.policy {
            Some(policy) => {
                let (packets, bytes) = count(chain.policy_counter);
                let policy = match policy {
                    Policy::Accept => "ACCEPT",
                    Policy::Drop => "DROP",
                };
                writeln!(text, ":{} {policy} [{packets}:{bytes}]", chain.name)
            }
            None => writeln!(text, ":{} - [0:0]", chain.name),
        };
    }
    for chain in &table.chains {
        for rule in &chain.rules {
            if counters {
                let (packets, bytes) = count(rule.counter);
                let _ = write!(text, "[{packets}:{bytes}] ");
            }
            *text += &rule_spec(&chain.name, rule);
            text.push('\n');
        }
    }
    let _ = writeln!(text, "COMMIT\n# Completed on {}", ctime());
}

/// The local time as `ctime(3)` prints it, without its newline: `Sat Nov 21 08:16:16 2026`.
fn ctime() -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) only returns the time; localtime_r writes only into `tm`, which is
    // plain data that zeroes are a valid value of.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}
