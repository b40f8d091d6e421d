//! `-m hashlimit`'s tables in the kernel: the outer map `HASHLIMIT` (pinned in the namespace's
//! directory, so that the tables outlive generations) holds, at each table's slot, a hash map
//! of its buckets, which the data plane fills as packets come (allocated as they come, at most
//! the table's `--hashlimit-htable-max`); `PCN_HASHLIMIT` holds each table's configuration.
//! A table is made before the first generation that names it goes live and dropped once no
//! rule names it.

use std::{
    io::Read as _,
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
    sync::OnceLock,
};

use anyhow::{Context as _, Result, anyhow};
use aya::maps::{Array, Map, MapData};
use pcn_iptables_common::hashlimit::{Bucket, Key, TABLES, Table};

use super::sys;
use crate::model::HashlimitTable;

pub const OUTER_PIN: &str = "HASHLIMIT";
/// The tables' configurations (an array the programs declare, pinned by name).
const CONFIG_PIN: &str = "PCN_HASHLIMIT";

fn new_buckets(entries: u32) -> Result<OwnedFd> {
    sys::map_create(
        "PCN_HL_BUCKETS",
        sys::MAP_TYPE_HASH,
        size_of::<Key>() as u32,
        size_of::<Bucket>() as u32,
        entries,
        sys::F_NO_PREALLOC,
    )
    .context("creating a -m hashlimit table")
}

/// Makes and pins the outer map and the configuration array unless they are (before the
/// programs load: the loader reuses the pins; a first install prepares its tables before).
pub fn create(dir: &Path) -> Result<()> {
    let config = dir.join(CONFIG_PIN);
    if !config.exists() {
        let map = sys::map_create(
            CONFIG_PIN,
            sys::MAP_TYPE_ARRAY,
            4,
            size_of::<Table>() as u32,
            TABLES,
            0,
        )
        .context("creating PCN_HASHLIMIT")?;
        match sys::obj_pin(map.as_fd(), &config) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).context("pinning PCN_HASHLIMIT");
            }
            _ => {}
        }
    }
    let pin = dir.join(OUTER_PIN);
    if pin.exists() {
        return Ok(());
    }
    sys::pin_outer(&pin, OUTER_PIN, new_buckets(1)?.as_fd(), TABLES).context("creating HASHLIMIT")
}

/// The kernel's HZ, which xt_hashlimit's arithmetic depends on: from its configuration
/// (/proc/config.gz, else /boot/config-RELEASE).
pub fn hz() -> Result<u64> {
    static HZ: OnceLock<Option<u64>> = OnceLock::new();
    let found = HZ.get_or_init(|| {
        let mut text = String::new();
        let gz = std::fs::File::open("/proc/config.gz").ok().and_then(|f| {
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut text)
                .ok()
        });
        if gz.is_none() {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
            text = std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()?;
        }
        text.lines()
            .find_map(|l| l.strip_prefix("CONFIG_HZ="))
            .and_then(|v| v.trim().parse().ok())
    });
    found.ok_or_else(|| {
        anyhow!(
            "-m hashlimit needs the kernel's HZ, which is in its configuration: neither \
             /proc/config.gz nor /boot/config-$(uname -r) says CONFIG_HZ"
        )
    })
}

fn outer(dir: &Path) -> Result<OwnedFd> {
    create(dir)?;
    sys::obj_get(&dir.join(OUTER_PIN)).context("opening HASHLIMIT")
}

/// The size of a table xt_hashlimit makes for `t` (`htable_create`): given, or from the
/// machine's memory; its maximum, 8 times that unless given (and not below it).
fn max_entries(t: &HashlimitTable) -> Result<u32> {
    let size = match t.config.size {
        0 => {
            // SAFETY: an all-zero sysinfo is valid; sysinfo(2) fills the struct it is given.
            let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::sysinfo(&mut info) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("reading the machine's memory");
            }
            let ram = info.totalram as u64 * info.mem_unit as u64;
            let size = if ram > 1 << 30 { 8192 } else { ram / 16384 / 8 };
            size.max(16) as u32
        }
        s => s,
    };
    Ok(match t.config.max {
        0 => 8 * size,
        m => m.max(size),
    })
}

/// Before a generation with the tables `new` goes live (`old`: the running one's): each new
/// table's configuration, and an empty map for its buckets.
pub fn prepare(dir: &Path, old: &[HashlimitTable], new: &[HashlimitTable]) -> Result<()> {
    let fresh: Vec<&HashlimitTable> = new.iter().filter(|t| !old.contains(t)).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let hz = hz()?;
    let outer = outer(dir)?;
    let config = MapData::from_pin(dir.join(CONFIG_PIN)).context("opening PCN_HASHLIMIT")?;
    let mut config: Array<MapData, Table> = Array::try_from(Map::Array(config))?;
    for t in fresh {
        config
            .set(t.slot as u32, Table::new(&t.config.config(), hz), 0)
            .context("configuring a hashlimit table")?;
        sys::set_fd(
            outer.as_fd(),
            t.slot as u32,
            new_buckets(max_entries(t)?)?.as_fd(),
        )
        .context("installing a -m hashlimit table")?;
    }
    Ok(())
}

/// Once a generation with the tables `new` is live: the tables of `old` it does not name go.
pub fn retire(dir: &Path, old: &[HashlimitTable], new: &[HashlimitTable]) -> Result<()> {
    let slots = |tables: &[HashlimitTable]| tables.iter().map(|t| t.slot).collect::<Vec<_>>();
    super::retire_slots(|| outer(dir), &slots(old), &slots(new))
}

/// The kernel's jiffies now (/proc/timer_list's, which root reads).
pub fn jiffies() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/timer_list").context("reading /proc/timer_list")?;
    text.lines()
        .find_map(|l| l.strip_prefix("jiffies: "))
        .and_then(|v| v.trim().parse().ok())
        .context("no jiffies in /proc/timer_list")
}

/// Table `t` as the data plane keeps it (its configuration, when its collection's ticks
/// started), and its buckets.
pub fn buckets(dir: &Path, t: &HashlimitTable) -> Result<(Table, Vec<(Key, Bucket)>)> {
    let config = MapData::from_pin(dir.join(CONFIG_PIN)).context("opening PCN_HASHLIMIT")?;
    let config: Array<MapData, Table> = Array::try_from(Map::Array(config))?;
    let table = config.get(&(t.slot as u32), 0)?;
    let outer = outer(dir)?;
    let id = sys::id_at(outer.as_fd(), t.slot as u32)?
        .with_context(|| format!("the -m hashlimit table of slot {} is gone", t.slot))?;
    let map = MapData::from_id(id).context("opening a -m hashlimit table")?;
    let map: aya::maps::HashMap<MapData, Key, Bucket> =
        aya::maps::HashMap::try_from(Map::HashMap(map))?;
    let buckets = map.iter().collect::<Result<Vec<_>, _>>()?;
    Ok((table, buckets))
}
