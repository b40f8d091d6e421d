//! The firewall binary under test: the reference `iptables-legacy` or `pcn-iptables`.

use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Debian's `iptables-legacy` 1.8.9: the reference.
    Legacy,
    /// The tool under test.
    Pcn,
}

/// A firewall binary and what kind it is.
#[derive(Clone, Debug)]
pub struct Fw {
    pub kind: Kind,
    pub bin: PathBuf,
}

impl Fw {
    /// `iptables-legacy`, from `$IPTABLES_LEGACY` or the usual places.
    pub fn legacy() -> Fw {
        let bin = std::env::var_os("IPTABLES_LEGACY")
            .map(PathBuf::from)
            .or_else(|| {
                [
                    "/usr/sbin/iptables-legacy",
                    "/sbin/iptables-legacy",
                    "/usr/bin/iptables-legacy",
                ]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
            })
            .unwrap_or_else(|| PathBuf::from("iptables-legacy"));
        Fw {
            kind: Kind::Legacy,
            bin,
        }
    }

    /// `pcn-iptables`, from `$PCN_IPTABLES`, else `<workspace>/target/release/pcn-iptables`.
    /// Panics with a hint when the binary is not there.
    pub fn pcn() -> Fw {
        let fw = Fw::pcn_unchecked();
        assert!(
            fw.bin.exists(),
            "pcn-iptables binary not found at {}: run `cargo build --release` in the workspace \
             or set PCN_IPTABLES to the binary",
            fw.bin.display()
        );
        fw
    }

    /// `pcn-iptables` if its binary is there.
    pub fn pcn_if_present() -> Option<Fw> {
        Some(Fw::pcn_unchecked()).filter(|fw| fw.bin.exists())
    }

    fn pcn_unchecked() -> Fw {
        let bin = std::env::var_os("PCN_IPTABLES")
            .map(PathBuf::from)
            .unwrap_or_else(default_pcn_path);
        let bin = if bin.is_relative() && bin.components().count() > 1 {
            workspace_dir().join(bin)
        } else {
            bin
        };
        Fw {
            kind: Kind::Pcn,
            bin,
        }
    }

    pub fn is_pcn(&self) -> bool {
        self.kind == Kind::Pcn
    }

    /// The binary as a string, for command lines.
    pub fn bin_str(&self) -> &str {
        self.bin.to_str().expect("utf-8 binary path")
    }

    /// The binary's file name (e.g. `iptables-legacy`, `pcn-iptables`).
    pub fn basename(&self) -> String {
        self.bin
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Short label for messages.
    pub fn label(&self) -> &'static str {
        match self.kind {
            Kind::Legacy => "iptables-legacy",
            Kind::Pcn => "pcn-iptables",
        }
    }
}

/// The workspace root (the parent of this package).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn default_pcn_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    let target = if target.is_relative() {
        workspace_dir().join(target)
    } else {
        target
    };
    target.join("release").join("pcn-iptables")
}
