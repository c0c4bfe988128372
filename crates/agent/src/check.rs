//! `check`: what on this host could tell an intruder the keys are bait —
//! names of files beside the bait, of units, processes and packages;
//! words in the bait files; bait files much newer than their neighbours.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::host;
use crate::state::Dir;

/// Words that say "this is a trap" to whoever reads a name or a file.
pub const TELLTALE: &[&str] = &["honeytrail", "honey", "canary", "decoy", "trap", "bait"];

fn telltale(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    TELLTALE.iter().copied().find(|w| lower.contains(w))
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::symlink_metadata(path).ok()?.modified().ok()
}

/// Every finding, one line each.
pub fn findings(dir: &Dir, root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut bait_files = Vec::new();
    if let Ok(state) = dir.load() {
        bait_files = state.files.iter().map(|k| k.path.clone()).collect();
    }
    for path in &bait_files {
        let on_disk = host::under(root, path);
        if let Ok(text) = std::fs::read_to_string(&on_disk) {
            for line in text.lines() {
                if let Some(w) = telltale(line) {
                    out.push(format!(
                        "{path}: a line says \"{w}\": {}",
                        honeytrail_core::encoding::printable(line.trim())
                    ));
                }
            }
        }
        let Some(parent) = on_disk.parent() else { continue };
        for name in names_in(parent) {
            if let Some(w) = telltale(&name) {
                out.push(format!("{}: a file beside the bait is named \"{name}\" ({w})", parent.display()));
            }
            if name.contains("-backup-") {
                out.push(format!("{}: a backup file beside the bait: {name}", parent.display()));
            }
        }
        // Bait written last week into a directory untouched for a year stands out.
        if let Some(mine) = modified(&on_disk) {
            let neighbours: Vec<SystemTime> = names_in(parent)
                .iter()
                .map(|n| parent.join(n))
                .filter(|p| *p != on_disk)
                .filter_map(|p| modified(&p))
                .collect();
            if let Some(newest) = neighbours.iter().max() {
                if mine.duration_since(*newest).unwrap_or_default() > Duration::from_secs(30 * 86400) {
                    out.push(format!(
                        "{path}: changed long after everything beside it; an intruder sorting by time sees it first (touch -r a neighbour to match)"
                    ));
                }
            }
        }
    }
    if let Some(w) = telltale(&dir.path.to_string_lossy()) {
        out.push(format!(
            "{}: the state directory's name says \"{w}\"; install with another --service-name",
            dir.path.display()
        ));
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(w) = telltale(&me.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()) {
            out.push(format!(
                "{}: this program's name says \"{w}\"; install it with `install --service-name`",
                me.display()
            ));
        }
    }
    for units in ["/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"] {
        for name in names_in(&host::under(root, units)) {
            if let Some(w) = telltale(&name) {
                out.push(format!("{units}/{name}: a unit named \"{w}\""));
            }
        }
    }
    if root == Path::new("/") {
        for pid in names_in(Path::new("/proc")).iter().filter(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                if let Some(w) = telltale(comm.trim()) {
                    out.push(format!("process {pid} ({}) is named \"{w}\"", comm.trim()));
                }
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string(host::under(root, "/var/lib/dpkg/status")) {
        for package in status.lines().filter_map(|l| l.strip_prefix("Package: ")) {
            if let Some(w) = telltale(package) {
                out.push(format!("package {package} is named \"{w}\""));
            }
        }
    }
    out
}

pub fn run(dir: &Dir, root: &Path) -> Result<ExitCode> {
    let found = findings(dir, root);
    if found.is_empty() {
        println!("nothing found that gives the bait away");
        return Ok(ExitCode::SUCCESS);
    }
    for f in &found {
        println!("{f}");
    }
    println!("{} thing(s) could give the bait away", found.len());
    Ok(ExitCode::from(1))
}
