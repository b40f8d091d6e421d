//! The few bpf(2) commands a rule change needs, called directly: creating a generation's maps,
//! filling them (through mmap where the map allows it), storing them in the outer maps,
//! pinning. A change never parses the eBPF object nor loads a program.
//!
//! The attributes are aya-obj's generated `union bpf_attr` (and `bpf_map_info`,
//! `bpf_prog_info`): the kernel's own layout, no byte offsets of ours. aya's public API has
//! some of these operations (`MapData::create`, `from_pin`, `from_id`, `pin`, `info`), but
//! each does more than the one system call a change needs (opening a pin or an id also reads
//! the map's info; creating a map first asks for the kernel's version), and none creates an
//! array of maps from an inner map, updates in batches, or stores a descriptor in a map of
//! maps. A change's latency is counted in system calls: it makes them itself. Only
//! membarrier(2) and clone(2), below, are not bpf(2) commands and have no such type.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use aya_obj::generated::{
    BPF_F_INNER_MAP, BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, bpf_attr, bpf_cmd, bpf_map_info,
    bpf_map_type, bpf_prog_info,
};

pub const MAP_TYPE_ARRAY: u32 = bpf_map_type::BPF_MAP_TYPE_ARRAY as u32;
pub const MAP_TYPE_ARRAY_OF_MAPS: u32 = bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32;
pub const MAP_TYPE_HASH: u32 = bpf_map_type::BPF_MAP_TYPE_HASH as u32;
pub const MAP_TYPE_LPM_TRIE: u32 = bpf_map_type::BPF_MAP_TYPE_LPM_TRIE as u32;
pub const MAP_TYPE_PERCPU_ARRAY: u32 = bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32;
pub const F_NO_PREALLOC: u32 = BPF_F_NO_PREALLOC;
pub const F_MMAPABLE: u32 = BPF_F_MMAPABLE;
pub const F_INNER_MAP: u32 = BPF_F_INNER_MAP;
/// The flags of the classifier's per-generation arrays (see the eBPF object's outer maps).
pub const INNER_ARRAY: u32 = F_INNER_MAP | F_MMAPABLE;

/// A zeroed `union bpf_attr`, for one command to fill.
fn attr() -> bpf_attr {
    // SAFETY: bpf_attr is integers and arrays of them all through: all zeroes is a valid
    // value, and what the kernel wants in every field a command does not set.
    unsafe { std::mem::zeroed() }
}

/// bpf(2): `cmd` with `attr` (a whole `union bpf_attr`, which the kernel may write back to).
fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    // SAFETY: a whole bpf_attr, filled for `cmd`; the pointers in it outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            std::mem::size_of::<bpf_attr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a new file descriptor the kernel just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// A map's name as `bpf_attr` holds it: at most 15 bytes, NUL-terminated.
fn map_name(name: &str) -> [libc::c_char; 16] {
    let mut out = [0; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b as libc::c_char;
    }
    out
}

/// BPF_MAP_CREATE: a map nobody references yet, freed when the descriptor closes unless it
/// gets pinned or stored in another map.
pub fn map_create(
    name: &str,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = attr();
    // SAFETY: any variant of a zeroed bpf_attr is a valid value (see `attr`).
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = map_type;
    create.key_size = key_size;
    create.value_size = value_size;
    create.max_entries = max_entries;
    create.map_flags = flags;
    create.map_name = map_name(name);
    bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr).map(owned)
}

/// BPF_MAP_CREATE of an array of `entries` maps that look like `inner`.
pub fn map_create_outer(name: &str, inner: BorrowedFd<'_>, entries: u32) -> io::Result<OwnedFd> {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = MAP_TYPE_ARRAY_OF_MAPS;
    create.key_size = 4;
    create.value_size = 4;
    create.max_entries = entries;
    create.inner_map_fd = inner.as_raw_fd() as u32;
    create.map_name = map_name(name);
    bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr).map(owned)
}

/// An array of `entries` maps like `inner`, pinned at `pin` (two commands may race: the one
/// whose pin fails uses the other's).
pub fn pin_outer(pin: &Path, name: &str, inner: BorrowedFd<'_>, entries: u32) -> io::Result<()> {
    match obj_pin(map_create_outer(name, inner, entries)?.as_fd(), pin) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The attributes of BPF_MAP_LOOKUP_ELEM and BPF_MAP_UPDATE_ELEM: `key` and `value` point at
/// the bytes (read, or for a lookup written, by the kernel).
fn elem_attr(map: BorrowedFd<'_>, key: *const u8, value: *const u8, flags: u64) -> bpf_attr {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let elem = unsafe { &mut attr.__bindgen_anon_2 };
    elem.map_fd = map.as_raw_fd() as u32;
    elem.key = key as u64;
    elem.__bindgen_anon_1.value = value as u64;
    elem.flags = flags;
    attr
}

/// BPF_MAP_LOOKUP_ELEM with raw key and value bytes (`false`: no such key). A map of maps
/// or a program array answers the id of what it holds.
pub fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut attr = elem_attr(map, key.as_ptr(), value.as_mut_ptr(), 0);
    match bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The id of the map or program at `index` of a map of maps or program array.
pub fn id_at(map: BorrowedFd<'_>, index: u32) -> io::Result<Option<u32>> {
    let mut id = [0u8; 4];
    Ok(map_lookup(map, &index.to_ne_bytes(), &mut id)?.then(|| u32::from_ne_bytes(id)))
}

/// BPF_MAP_GET_FD_BY_ID.
pub fn map_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let by_id = unsafe { &mut attr.__bindgen_anon_6 };
    by_id.__bindgen_anon_1.map_id = id;
    bpf(bpf_cmd::BPF_MAP_GET_FD_BY_ID, &mut attr).map(owned)
}

/// What BPF_OBJ_GET_INFO_BY_FD tells of a map.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapInfo {
    pub id: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD: fills `info` (`struct bpf_map_info`, `bpf_prog_info`, ...) for
/// the map or program `fd`.
fn obj_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let get = unsafe { &mut attr.info };
    get.bpf_fd = fd.as_raw_fd() as u32;
    get.info_len = std::mem::size_of::<T>() as u32;
    get.info = std::ptr::from_mut(info) as u64;
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

pub fn map_info(map: BorrowedFd<'_>) -> io::Result<MapInfo> {
    // SAFETY: bpf_map_info is integers and arrays of them: all zeroes is a valid value, and
    // what the kernel wants of what it does not fill.
    let mut info: bpf_map_info = unsafe { std::mem::zeroed() };
    obj_info(map, &mut info)?;
    Ok(MapInfo {
        id: info.id,
        value_size: info.value_size,
        max_entries: info.max_entries,
    })
}

/// The id of the program `prog`.
pub fn prog_id(prog: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: as in `map_info`, for bpf_prog_info.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    obj_info(prog, &mut info)?;
    Ok(info.id)
}

/// One CPU mask per CPU, each with that CPU alone, for `hop`; `None` where hopping proves
/// nothing: on PREEMPT_RT, whose softirqs are preemptible, or where this process may not run
/// on every online CPU (a cpuset, isolcpus).
fn hop_masks() -> Option<Vec<libc::cpu_set_t>> {
    if std::fs::read_to_string("/sys/kernel/realtime").is_ok_and(|s| s.trim() == "1") {
        return None;
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `allowed` is a cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return None;
    }
    // SAFETY: sysconf takes no pointers.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `allowed` is a valid set; the index is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &allowed) })
        .collect();
    if online <= 0 || cpus.len() != online as usize {
        return None;
    }
    Some(
        cpus.into_iter()
            .map(|c| {
                // SAFETY: as above.
                let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                // SAFETY: the index is below CPU_SETSIZE.
                unsafe { libc::CPU_SET(c, &mut one) };
                one
            })
            .collect(),
    )
}

/// Runs this thread on each CPU in turn, which is over once every CPU has scheduled it: our
/// programs run with preemption off (XDP in softirq, TC egress with bottom halves off), so a
/// CPU that schedules another thread has finished whatever program it ran before. Tens of
/// microseconds per CPU where an RCU grace period (membarrier) takes milliseconds, and
/// commands that follow each other wait for one. `false`: not done (see `hop_masks`).
fn hop(masks: &[libc::cpu_set_t]) -> bool {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is a cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
        return false;
    }
    // SAFETY: each mask is a cpu_set_t of `size` bytes; setting this thread's affinity to
    // one CPU migrates it there before the call returns.
    let done = masks
        .iter()
        .all(|m| unsafe { libc::sched_setaffinity(0, size, m) } == 0);
    // SAFETY: as above.
    unsafe { libc::sched_setaffinity(0, size, &old) };
    done
}

/// `hop` where it proves a grace period; `false`: it does not here (see `hop_masks`).
pub fn hop_over_cpus() -> bool {
    hop_masks().is_some_and(|m| hop(&m))
}

/// Waits until every BPF program that was running when it was called has finished: by
/// hopping over the CPUs (`hop`), else an RCU grace period: membarrier(MEMBARRIER_CMD_GLOBAL),
/// or where that is refused (nohz_full), an update of a map of maps, which waits for one.
pub fn synchronize() -> io::Result<()> {
    if hop_over_cpus() {
        return Ok(());
    }
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers.
    if unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) } == 0 {
        return Ok(());
    }
    let inner = map_create("PCN_SYNC", MAP_TYPE_ARRAY, 4, 4, 1, 0)?;
    let outer = map_create_outer("PCN_SYNC", inner.as_fd(), 1)?;
    set_fd(outer.as_fd(), 0, inner.as_fd())
}

/// BPF_MAP_UPDATE_ELEM with raw key and value bytes.
pub fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    let mut attr = elem_attr(map, key.as_ptr(), value.as_ptr(), flags);
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_DELETE_ELEM (`false`: no such key).
pub fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    let mut attr = elem_attr(map, key.as_ptr(), std::ptr::null(), 0);
    match bpf(bpf_cmd::BPF_MAP_DELETE_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// BPF_MAP_UPDATE_BATCH: `keys` and `values` hold `count` keys and values, back to back; one
/// syscall instead of one per element. Kernels without it for this map type answer EINVAL or
/// ENOTSUPP (524).
pub fn map_update_batch(
    map: BorrowedFd<'_>,
    keys: &[u8],
    values: &[u8],
    count: u32,
) -> io::Result<()> {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let batch = unsafe { &mut attr.batch };
    batch.keys = keys.as_ptr() as u64;
    batch.values = values.as_ptr() as u64;
    batch.count = count;
    batch.map_fd = map.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut attr)?;
    // The kernel writes back how many it did.
    // SAFETY: the variant written above, which the kernel updates.
    let done = unsafe { attr.batch.count };
    if done == count {
        Ok(())
    } else {
        Err(io::Error::other("batch update stopped early"))
    }
}

/// Stores a map (in an array of maps) or a program (in a program array) at `index`.
pub fn set_fd(map: BorrowedFd<'_>, index: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
    map_update(
        map,
        &index.to_ne_bytes(),
        &(fd.as_raw_fd() as u32).to_ne_bytes(),
        0,
    )
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The attributes of BPF_OBJ_GET and BPF_OBJ_PIN.
fn obj_attr(path: &CString, fd: u32) -> bpf_attr {
    let mut attr = attr();
    // SAFETY: as in `map_create`.
    let obj = unsafe { &mut attr.__bindgen_anon_4 };
    obj.pathname = path.as_ptr() as u64;
    obj.bpf_fd = fd;
    attr
}

/// BPF_OBJ_GET: opens a pinned map or program.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    bpf(bpf_cmd::BPF_OBJ_GET, &mut obj_attr(&path, 0)).map(owned)
}

/// BPF_OBJ_PIN: pins a map or program at `path` (which must not exist).
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    bpf(
        bpf_cmd::BPF_OBJ_PIN,
        &mut obj_attr(&path, fd.as_raw_fd() as u32),
    )
    .map(drop)
}

/// A writable mapping of a BPF_F_MMAPABLE array's values (`len` bytes from the start, or
/// from a page).
pub struct Mapping {
    base: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    pub fn new(map: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        Mapping::at(map, 0, len)
    }

    /// `len` bytes from `offset` (a multiple of the page size) on.
    pub fn at(map: BorrowedFd<'_>, offset: usize, len: usize) -> io::Result<Self> {
        let len = len.max(1);
        // SAFETY: a shared mapping of the map's memory, unmapped on drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                // Populated at once: no page fault per page written.
                libc::MAP_SHARED,
                map.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { base, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.base.cast()
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes mapped read-write at `base`, alive as long as self.
        unsafe { std::slice::from_raw_parts_mut(self.base.cast(), self.len) }
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: as in `bytes`; readers of a shared mapping see what writers left.
        unsafe { std::slice::from_raw_parts(self.base.cast(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

// SAFETY: a mapping is plain shared memory; who writes where is up to its users (each thread
// of a fill writes its own bitmaps).
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

/// Raw system calls for `grace_child`, which may not touch anything of the C library (it
/// shares the parent's thread-local storage, errno included).
#[cfg(target_arch = "x86_64")]
unsafe fn raw_syscall(n: libc::c_long, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the Linux x86-64 system call convention; the caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    };
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn raw_syscall(n: libc::c_long, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the Linux arm64 system call convention; the caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") n as usize,
            inlateout("x0") a => ret,
            in("x1") b,
            in("x2") c,
            options(nostack),
        )
    };
    ret
}

/// What `grace_child` needs, in memory it shares with the parent and nobody frees.
#[repr(C, align(8))]
struct GraceArgs {
    attr: bpf_attr,
    fd: u32,
    key: u32,
    value: u64,
    /// `hop_masks`, or none: a grace period then.
    masks: *const libc::cpu_set_t,
    nmasks: usize,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn grace_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the leaked GraceArgs; only raw system calls below.
    unsafe {
        let a = &*(arg as *const GraceArgs);
        let fd = a.fd as usize;
        // Nothing of the parent's but the marker: no pipe, lock or map stays open for it.
        if fd > 0 {
            raw_syscall(libc::SYS_close_range, 0, fd - 1, 0);
        }
        raw_syscall(libc::SYS_close_range, fd + 1, u32::MAX as usize, 0);
        const MEMBARRIER_CMD_GLOBAL: usize = 1;
        // As `hop`: on each CPU in turn (a process of its own: its affinity is its own).
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let hopped = a.nmasks > 0
            && (0..a.nmasks).all(|i| {
                raw_syscall(
                    libc::SYS_sched_setaffinity,
                    0,
                    size,
                    a.masks.add(i) as usize,
                ) == 0
            });
        if hopped || raw_syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0 {
            raw_syscall(
                libc::SYS_bpf,
                bpf_cmd::BPF_MAP_UPDATE_ELEM as usize,
                std::ptr::from_ref(&a.attr) as usize,
                std::mem::size_of::<bpf_attr>(),
            );
        }
        raw_syscall(libc::SYS_exit, 0, 0, 0);
    }
    0
}

/// Writes `value` at key 0 of the array `marker` (4-byte keys, 8-byte values) once a grace
/// period has passed, in a process of its own that shares this one's memory (CLONE_VM) and
/// outlives it by that long: this process does not wait, and its exit does not tear its
/// address space down either (the helper's exit does). `false`: no such helper here.
pub fn after_grace_period(marker: BorrowedFd<'_>, value: u64) -> io::Result<bool> {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (marker, value);
        return Ok(false);
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        const STACK: usize = 64 << 10;
        // SAFETY: a fresh private mapping for the helper's stack, never unmapped.
        let stack = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let masks: &'static [libc::cpu_set_t] = hop_masks().unwrap_or_default().leak();
        let args = Box::leak(Box::new(GraceArgs {
            attr: attr(),
            fd: marker.as_raw_fd() as u32,
            key: 0,
            value,
            masks: masks.as_ptr(),
            nmasks: masks.len(),
        }));
        args.attr = elem_attr(
            marker,
            std::ptr::from_ref(&args.key).cast(),
            std::ptr::from_ref(&args.value).cast(),
            0,
        );
        // SAFETY: the helper runs `grace_child` on its own stack with the leaked arguments,
        // both alive as long as the address space.
        let pid = unsafe {
            libc::clone(
                grace_child,
                stack.cast::<u8>().add(STACK).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                (args as *mut GraceArgs).cast(),
            )
        };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity() -> Vec<usize> {
        // SAFETY: as in `hop_masks`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is a cpu_set_t of `size` bytes.
        assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut set) }, 0);
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: the index is below CPU_SETSIZE.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    }

    /// On this machine (no PREEMPT_RT, every CPU ours), a grace period is a hop over every
    /// CPU, which leaves the thread's affinity as it was.
    #[test]
    fn a_hop_visits_every_cpu_and_restores_the_affinity() {
        let before = affinity();
        let masks = hop_masks().expect("every online CPU is ours here");
        assert_eq!(masks.len(), before.len());
        assert!(hop(&masks));
        assert_eq!(affinity(), before);
    }
}
