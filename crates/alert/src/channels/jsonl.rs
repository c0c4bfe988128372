//! JSON lines to a file, for a SIEM agent (Filebeat, Vector, Fluent Bit) to
//! tail: one alert per line, appended and flushed to disk before it counts as
//! delivered.
//!
//! Example configuration (`honeytrail channel add jsonl siem --path /var/log/honeytrail/alerts.jsonl`):
//! ```json
//! {"path": "/var/log/honeytrail/alerts.jsonl"}
//! ```

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::retry::{Failure, Retry};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JsonLinesConfig {
    pub path: String,
}

/// Appends `body` (one JSON document, no newlines inside) as one line.
pub fn deliver(config: &JsonLinesConfig, body: &[u8]) -> Result<(), Failure> {
    let fail = |what: &str, e: std::io::Error| Failure {
        message: format!("cannot {what} {}: {e}", config.path),
        retry: Retry::Backoff,
    };
    if body.contains(&b'\n') {
        return Err(Failure { message: "an alert body must be one line of JSON".into(), retry: Retry::Never });
    }
    let mut line = body.to_vec();
    line.push(b'\n');
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(&config.path).map_err(|e| fail("open", e))?;
    // One write of the whole line: with O_APPEND, concurrent writers never interleave inside it.
    file.write_all(&line).map_err(|e| fail("append to", e))?;
    file.sync_data().map_err(|e| fail("flush", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_line_per_alert() {
        let dir = std::env::temp_dir().join(format!("ht-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = JsonLinesConfig { path: dir.join("alerts.jsonl").display().to_string() };
        deliver(&config, br#"{"a":1}"#).unwrap();
        deliver(&config, br#"{"a":2}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&config.path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(deliver(&config, b"{\n}").unwrap_err().retry, Retry::Never);
        let missing = JsonLinesConfig { path: dir.join("no/such/dir/x.jsonl").display().to_string() };
        assert_eq!(deliver(&missing, b"{}").unwrap_err().retry, Retry::Backoff);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
