use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .join("pcn-iptables-ebpf");
    let root = root.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    // The eBPF crate needs build-std, a nightly feature; the stable toolchain allows it with
    // RUSTC_BOOTSTRAP, so one toolchain builds everything.
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "pcn-iptables-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )?;
    // The object's hash names the directory of its programs (`dataplane::generation`):
    // computed here once, not by every command (hashing 800 KB took 0.3 ms of each).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let elf = std::fs::read(out.join("pcn-iptables-ebpf")).context("reading the eBPF object")?;
    println!("cargo:rustc-env=PCN_ELF_HASH={:016x}", elf_hash(&elf));
    // A position-dependent executable: the dynamic loader relocates ~9,000 pointers of a PIE
    // at every start, copying ~40 pages (~75 us of each command here); iptables has ~300.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    static_unwinder(&out)
}

/// Links gcc's unwinder statically (what `-static-libgcc` does for C++): std asks for
/// `-lgcc_s`, which a linker script found first turns into libgcc_eh.a. libgcc_s.so's
/// constructor probes the CPU with cpuid, which traps to the hypervisor on a VM: loading it
/// took 0.15 ms of every command here, and iptables loads no such library.
fn static_unwinder(out: &std::path::Path) -> anyhow::Result<()> {
    let dir = out.join("unwind");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")?;
    println!("cargo:rustc-link-search=native={}", dir.display());
    Ok(())
}

/// FNV-1a over the object's 8-byte words, then its length.
fn elf_hash(elf: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = elf.chunks_exact(8);
    for w in &mut words {
        h ^= u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    for b in words.remainder() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ elf.len() as u64
}
