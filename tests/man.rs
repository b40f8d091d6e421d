//! The man pages render without a warning: `man --warnings -l PAGE` writes nothing on stderr,
//! for every page in man/.

use std::process::{Command, Stdio};

use pcn_iptables_tests::fw::workspace_dir;

#[test]
fn man_pages_render_without_warnings() {
    let dir = workspace_dir().join("man");
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("man/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "8"))
        .collect();
    pages.sort();
    let names: Vec<_> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for page in [
        "pcn-iptables.8",
        "pcn-iptables-save.8",
        "pcn-iptables-restore.8",
    ] {
        assert!(names.iter().any(|n| n == page), "man/{page} is missing");
    }
    for page in &pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(page)
            .env("MANWIDTH", "80")
            .stdin(Stdio::null())
            .output()
            .expect("run man (package man-db)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty() && !out.stdout.is_empty(),
            "man -l {}: {}\n{stderr}",
            page.display(),
            out.status
        );
    }
}
