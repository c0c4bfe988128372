//! JSON lines to a file, for a SIEM agent (Filebeat, Vector, Fluent Bit) to
//! tail: one alert per line, appended and flushed to disk before it counts as
//! delivered.
//!
//! Example configuration (`honeytrail channel add jsonl siem --path /var/log/honeytrail/alerts.jsonl`):
//! ```json
//! {"path": "/var/log/honeytrail/alerts.jsonl"}
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::channels::{BoxFuture, Channel, Configured, Outgoing};
use crate::retry::{Failure, Retry};
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JsonLinesConfig {
    pub path: String,
    /// What each line is: `honeytrail.alert.v1`, OCSF or ECS.
    #[serde(default, skip_serializing_if = "crate::siem::Format::is_default")]
    pub format: crate::siem::Format,
}

/// Where JSON-lines files may be written. An alert line holds text the
/// intruder wrote (user agents, request parameters); appended to a shell
/// profile or a configuration file it would be run, so files are confined
/// to one directory, never inside honeytrail's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePolicy {
    /// `alerts.jsonl_dir`: every JSON-lines file is in it (or below it).
    pub dir: PathBuf,
    /// honeytrail's data directory (database, data key): never written.
    pub protected: Option<PathBuf>,
}

impl Default for FilePolicy {
    fn default() -> Self {
        FilePolicy { dir: PathBuf::from(DEFAULT_DIR), protected: None }
    }
}

/// The default of `alerts.jsonl_dir`.
pub const DEFAULT_DIR: &str = "/var/log/honeytrail";

fn never(message: String) -> Failure {
    Failure { message, retry: Retry::Never }
}

/// The file a configured path names, if the policy allows it: relative paths
/// are taken inside the directory, `..` is refused, and the file's real
/// parent (symbolic links resolved) must be inside the directory and
/// outside the data directory.
pub fn confine(path: &str, policy: &FilePolicy) -> Result<PathBuf, Failure> {
    let given = Path::new(path.trim());
    if given.as_os_str().is_empty() || given.file_name().is_none() {
        return Err(never("the JSON-lines path names no file".into()));
    }
    if given.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(never(format!("the JSON-lines path {} may not contain ..", given.display())));
    }
    let full = if given.is_absolute() { given.to_path_buf() } else { policy.dir.join(given) };
    let dir = policy.dir.canonicalize().map_err(|e| Failure {
        message: format!(
            "the JSON-lines directory {} (alerts.jsonl_dir) cannot be used: {e}; create it or set alerts.jsonl_dir",
            policy.dir.display()
        ),
        retry: Retry::Backoff,
    })?;
    let parent = full.parent().unwrap_or(Path::new("/"));
    let real_parent = parent.canonicalize().map_err(|e| Failure {
        message: format!("the folder {} of the JSON-lines file cannot be used: {e}", parent.display()),
        retry: Retry::Backoff,
    })?;
    if !real_parent.starts_with(&dir) {
        return Err(never(format!(
            "{} is outside the JSON-lines directory {} (alerts.jsonl_dir); write alerts there or set alerts.jsonl_dir",
            full.display(),
            dir.display()
        )));
    }
    if let Some(data) = policy.protected.as_ref().and_then(|d| d.canonicalize().ok()) {
        if real_parent.starts_with(&data) {
            return Err(never(format!(
                "{} is inside honeytrail's data directory; alerts are never written there",
                full.display()
            )));
        }
    }
    Ok(real_parent.join(full.file_name().expect("checked above")))
}

/// Appends `body` (one JSON document, no newlines inside) as one line, to a
/// file the policy allows, created 0600; a symbolic link at the path is refused.
pub fn deliver(config: &JsonLinesConfig, policy: &FilePolicy, body: &[u8]) -> Result<(), Failure> {
    let path = confine(&config.path, policy)?;
    let fail = |what: &str, e: std::io::Error| Failure {
        message: format!("cannot {what} {}: {e}", path.display()),
        retry: Retry::Backoff,
    };
    if body.contains(&b'\n') || body.contains(&b'\r') {
        return Err(Failure { message: "an alert body must be one line of JSON".into(), retry: Retry::Never });
    }
    let mut line = body.to_vec();
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| fail("open", e))?;
    // One write of the whole line: with O_APPEND, concurrent writers never interleave inside it.
    file.write_all(&line).map_err(|e| fail("append to", e))?;
    file.sync_data().map_err(|e| fail("flush", e))?;
    Ok(())
}

static SPEC: KindSpec = KindSpec {
    name: "jsonl",
    summary: "JSON lines appended to a file, for a SIEM agent to tail",
    fields: &[
        FieldSpec {
            key: "path",
            flag: "path",
            help: "The file to append to (created if missing)",
            value: FieldValue::Path,
            required: true,
            default: None,
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "format",
            flag: "format",
            help: "Each line as honeytrail.alert.v1, an OCSF Detection Finding or an ECS document",
            value: FieldValue::Choice { values: &["honeytrail", "ocsf", "ecs"] },
            required: false,
            default: Some("honeytrail"),
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for JsonLinesConfig {
    const SPEC: &'static KindSpec = &SPEC;
}

impl Channel for JsonLinesConfig {
    fn summary(&self) -> String {
        format!("alerts are appended to {}", self.path)
    }

    fn check<'a>(&'a self, sender: &'a crate::Sender) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move { confine(&self.path, &sender.files).map(|_| ()) })
    }

    fn deliver<'a>(
        &'a self,
        sender: &'a crate::Sender,
        out: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, Failure>> {
        Box::pin(async move { deliver(self, &sender.files, &self.format.encode(out.alert)).map(|()| None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_line_per_alert() {
        let dir = tempfile::tempdir().unwrap();
        let policy = FilePolicy { dir: dir.path().to_path_buf(), protected: None };
        let config =
            JsonLinesConfig { path: dir.path().join("alerts.jsonl").display().to_string(), format: Default::default() };
        deliver(&config, &policy, br#"{"a":1}"#).unwrap();
        deliver(&config, &policy, br#"{"a":2}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&config.path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&config.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(deliver(&config, &policy, b"{\n}").unwrap_err().retry, Retry::Never);
        let relative = JsonLinesConfig { path: "relative.jsonl".into(), format: Default::default() };
        deliver(&relative, &policy, b"{}").unwrap();
        assert!(dir.path().join("relative.jsonl").exists());
        let missing = JsonLinesConfig {
            path: dir.path().join("no/such/dir/x.jsonl").display().to_string(),
            format: Default::default(),
        };
        assert_eq!(deliver(&missing, &policy, b"{}").unwrap_err().retry, Retry::Backoff);
    }

    #[test]
    fn files_outside_the_directory_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let (alerts, data, home) = (root.path().join("alerts"), root.path().join("data"), root.path().join("home"));
        for d in [&alerts, &data, &home] {
            std::fs::create_dir(d).unwrap();
        }
        let policy = FilePolicy { dir: alerts.clone(), protected: Some(data.clone()) };
        let bashrc = home.join(".bashrc");
        std::fs::write(&bashrc, "# mine\n").unwrap();
        for path in [
            bashrc.display().to_string(),
            format!("{}/../home/.bashrc", alerts.display()),
            "../home/.bashrc".to_string(),
            data.join("secret.key").display().to_string(),
        ] {
            let err = deliver(&JsonLinesConfig { path: path.clone(), format: Default::default() }, &policy, b"{}")
                .unwrap_err();
            assert_eq!(err.retry, Retry::Never, "{path}: {}", err.message);
        }
        // A link inside the directory to a file outside it is not followed.
        std::os::unix::fs::symlink(&bashrc, alerts.join("link.jsonl")).unwrap();
        assert!(deliver(&JsonLinesConfig { path: "link.jsonl".into(), format: Default::default() }, &policy, b"{}")
            .is_err());
        std::os::unix::fs::symlink(&home, alerts.join("out")).unwrap();
        assert!(deliver(&JsonLinesConfig { path: "out/x.jsonl".into(), format: Default::default() }, &policy, b"{}")
            .is_err());
        // The data directory inside the alerts directory is still refused.
        let nested = FilePolicy { dir: root.path().to_path_buf(), protected: Some(data.clone()) };
        assert!(deliver(&JsonLinesConfig { path: "data/x.jsonl".into(), format: Default::default() }, &nested, b"{}")
            .is_err());
        assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "# mine\n");
    }
}
