//! Forgetting namespaces that are gone. With no daemon, nobody sees a network namespace die
//! with our pins still in it; its programs and maps would live on, pinned, until reboot. A
//! namespace's loopback device dies with it, and the XDP link of a dead device reports
//! ifindex 0, so the state of any namespace whose `xdp-1` (lo) link says so is removed, and
//! that of an install abandoned before it attached (see `ABANDONED`). That is checked at
//! every first install in a namespace, not at every change: namespaces come and go with
//! installs, and a change stays as cheap with a hundred namespaces as with one. Classic TC filters (see
//! `tc`) need nothing here: they die with the namespace's devices (a physical device moved
//! back to the initial namespace loses its qdiscs on the way), and they hold the only
//! references to their programs.

use std::{ffi::CString, fs, os::unix::ffi::OsStrExt as _, path::Path};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
/// lo's ifindex in every network namespace.
const LOOPBACK: u32 = 1;

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> libc::c_long {
    // SAFETY: attr is a zero-filled 128-byte bpf_attr, large enough for these commands.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    }
}

/// The ifindex a pinned XDP link is attached to (0 once its device is gone).
fn link_ifindex(pin: &Path) -> Option<u32> {
    let path = CString::new(pin.as_os_str().as_bytes()).ok()?;
    let mut attr = [0u64; 16];
    attr[0] = path.as_ptr() as u64;
    let fd = bpf(BPF_OBJ_GET, &mut attr);
    if fd < 0 {
        return None;
    }
    // struct bpf_link_info: type, id, prog_id, padding, then the xdp/tcx union's ifindex.
    let mut info = [0u32; 16];
    let mut attr = [0u64; 16];
    attr[0] = (fd as u64) | ((std::mem::size_of_val(&info) as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    let rc = bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr);
    // SAFETY: fd came from BPF_OBJ_GET and is ours.
    unsafe { libc::close(fd as i32) };
    (rc == 0).then_some(info[4])
}

/// A first install attaches to lo before its first switch; one killed before that, in a
/// namespace gone since, leaves a directory no link tells about. Untouched this long (every
/// change pins its state anew), it is taken for abandoned: nothing was enforced from it, and
/// a later command in a namespace still there installs afresh.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn untouched_for(dir: &Path, age: std::time::Duration) -> bool {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

/// Removes the state directories, other than `current`, of namespaces that no longer exist,
/// in every layout's directory (an older binary's state outlives its namespace too).
pub fn collect(current: &Path) {
    let Some(layouts) = current.parent().and_then(Path::parent) else {
        return;
    };
    let Ok(layouts) = fs::read_dir(layouts) else {
        return;
    };
    for layout in layouts.flatten() {
        let Ok(entries) = fs::read_dir(layout.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir == current || !entry.file_name().as_bytes().starts_with(b"net-") {
                continue;
            }
            let lo = dir.join(format!("xdp-{LOOPBACK}"));
            if link_ifindex(&lo) == Some(0) || (!lo.exists() && untouched_for(&dir, ABANDONED)) {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}
