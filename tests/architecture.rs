//! The architecture invariants of ARCHITECTURE.md that Cargo and the sources
//! can tell: which crate may depend on which, what the pure core and the
//! agent may not link, and that the front doors never see a store row.
//! Each assertion names the rule it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `[dependencies]` (not dev- or build-) of a manifest, target-specific
/// tables included.
fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut names = BTreeSet::new();
    let mut add = |table: Option<&toml::Value>| {
        if let Some(deps) = table.and_then(|d| d.as_table()) {
            names.extend(deps.keys().cloned());
        }
    };
    add(doc.get("dependencies"));
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for target in targets.values() {
            add(target.get("dependencies"));
        }
    }
    names
}

/// Every crate of the workspace (the root package is the `honeytrail`
/// binary) and its manifest.
fn crates() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    out.insert("honeytrail".to_string(), root().join("Cargo.toml"));
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if manifest.exists() {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let doc: toml::Table = text.parse().unwrap();
            let name = doc["package"]["name"].as_str().unwrap().to_string();
            out.insert(name, manifest);
        }
    }
    out
}

/// The honeytrail crates each crate may depend on: the layering of
/// ARCHITECTURE.md. Anything not listed is refused.
const ALLOWED: &[(&str, &[&str])] = &[
    ("honeytrail-core", &[]),
    ("honeytrail-place", &[]),
    ("honeytrail-testkit", &[]),
    ("honeytrail-ingest", &["honeytrail-core"]),
    ("honeytrail-store", &["honeytrail-core"]),
    ("honeytrail-aws", &["honeytrail-core"]),
    ("honeytrail-alert", &["honeytrail-core"]),
    (
        "honeytrail-app",
        &[
            "honeytrail-core",
            "honeytrail-place",
            "honeytrail-store",
            "honeytrail-aws",
            "honeytrail-ingest",
            "honeytrail-alert",
        ],
    ),
    ("honeytrail-server", &["honeytrail-core", "honeytrail-app"]),
    ("honeytrail", &["honeytrail-core", "honeytrail-app", "honeytrail-server"]),
    ("honeytrail-agent", &["honeytrail-core", "honeytrail-place"]),
];

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let all = crates();
    assert!(all.len() >= 11, "{all:?}");
    for (name, manifest) in &all {
        let allowed = ALLOWED
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not in ARCHITECTURE.md's layering (tests/architecture.rs ALLOWED)"))
            .1;
        for dep in dependencies(manifest).iter().filter(|d| d.starts_with("honeytrail")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} depends on {dep}; it may use only {allowed:?} (the front doors reach the store, AWS, \
                 alerting and ingest through honeytrail-app's operations)"
            );
        }
    }
}

#[test]
fn the_core_does_no_io_and_the_agent_links_no_database_or_aws_sdk() {
    let all = crates();
    let core = dependencies(&all["honeytrail-core"]);
    for io in ["tokio", "sqlx", "reqwest", "axum", "hyper", "rustix", "libc", "lettre", "aws-config"] {
        assert!(!core.contains(io), "honeytrail-core depends on {io}: the core does no I/O");
    }
    assert!(!core.iter().any(|d| d.starts_with("aws-sdk")), "honeytrail-core links an AWS SDK");
    let agent = dependencies(&all["honeytrail-agent"]);
    for forbidden in ["sqlx", "aws-config"] {
        assert!(!agent.contains(forbidden), "the agent links {forbidden}");
    }
    assert!(!agent.iter().any(|d| d.starts_with("aws-sdk")), "the agent links an AWS SDK");
}

/// Source files under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn store_rows_cannot_be_serialised_so_the_api_serialises_its_own_types() {
    for file in sources(&root().join("crates/store/src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let derive = line.trim_start().starts_with("#[derive(");
            assert!(
                !(derive && line.contains("Serialize")),
                "{}:{}: a store row derives Serialize; give the operation a typed result instead",
                file.display(),
                n + 1
            );
        }
    }
}

#[test]
fn the_front_doors_never_name_a_lower_layer() {
    for dir in ["crates/server/src", "crates/cli"] {
        for file in sources(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for lower in ["honeytrail_store", "honeytrail_alert", "honeytrail_aws", "honeytrail_ingest"] {
                // The metric names begin with honeytrail_alert_…: only paths count.
                assert!(!text.contains(&format!("{lower}::")), "{} names {lower}", file.display());
            }
        }
    }
}

#[test]
fn architecture_md_describes_every_crate() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for (name, manifest) in crates() {
        let dir = manifest.parent().unwrap().strip_prefix(root()).unwrap().display().to_string();
        let dir = if dir.is_empty() { "crates/cli".to_string() } else { dir };
        assert!(doc.contains(&format!("### `{dir}`")), "ARCHITECTURE.md has no section for {name} ({dir})");
    }
}
