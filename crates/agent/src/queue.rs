//! The evidence queue: access records wait in the state directory
//! (`evidence.jsonl`, 0600, one record a line, oldest first) until the
//! server took them, so a server outage or an agent restart loses nothing.
//! It is bounded: beyond [`MAX_QUEUED`] records the oldest are dropped and
//! counted, and the count goes to the server with the next delivery.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use honeytrail_core::evidence::Access;

/// Records kept at most while the server cannot be reached.
pub const MAX_QUEUED: usize = 10_000;
const QUEUE: &str = "evidence.jsonl";
const DROPPED: &str = "evidence.dropped";

pub struct Queue {
    dir: PathBuf,
    max: usize,
    /// Lines in the file; `None` until first counted.
    inner: Mutex<Option<usize>>,
}

impl Queue {
    pub fn new(dir: &Path) -> Queue {
        Queue::with_limit(dir, MAX_QUEUED)
    }

    pub fn with_limit(dir: &Path, max: usize) -> Queue {
        Queue { dir: dir.to_path_buf(), max: max.max(1), inner: Mutex::new(None) }
    }

    /// The state directory the queue lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join(QUEUE)
    }

    fn lines(&self) -> Result<Vec<String>> {
        match std::fs::File::open(self.file()) {
            Ok(f) => Ok(std::io::BufReader::new(f).lines().map_while(std::result::Result::ok).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.file().display())),
        }
    }

    fn rewrite(&self, lines: &[String]) -> Result<()> {
        let tmp = self.dir.join(format!(".{QUEUE}.tmp"));
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.file())
        })();
        written.with_context(|| format!("cannot write {}", self.file().display()))
    }

    /// How many records were dropped and not yet reported.
    pub fn dropped(&self) -> u64 {
        std::fs::read_to_string(self.dir.join(DROPPED)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    fn set_dropped(&self, n: u64) -> Result<()> {
        let path = self.dir.join(DROPPED);
        if n == 0 {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        f.write_all(n.to_string().as_bytes())?;
        f.sync_all()?;
        Ok(())
    }

    /// Appends a record (written through to disk); drops the oldest when full.
    pub fn push(&self, access: &Access) -> Result<()> {
        let mut count = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = match *count {
            Some(n) => n,
            None => self.lines()?.len(),
        };
        let line = serde_json::to_string(access)?;
        if n >= self.max {
            let mut lines = self.lines()?;
            // A tenth at a time: a flood of reads while the server is away
            // rewrites the file once per thousand records, not per record.
            let excess = (lines.len() + 1 - self.max.min(lines.len() + 1)).max(self.max / 10).min(lines.len());
            lines.drain(..excess.min(lines.len()));
            lines.push(line);
            self.rewrite(&lines)?;
            self.set_dropped(self.dropped() + excess as u64)?;
            *count = Some(lines.len());
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.file())
            .with_context(|| format!("cannot open {}", self.file().display()))?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()?;
        *count = Some(n + 1);
        Ok(())
    }

    /// The oldest `max` records, and the dropped count. Lines that do not
    /// parse (cut short by a crash) are counted as dropped.
    pub fn peek(&self, max: usize) -> Result<Batch> {
        let _guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let lines = self.lines()?;
        let taken = lines.len().min(max);
        let mut records = Vec::with_capacity(taken);
        let mut damaged = 0;
        for l in &lines[..taken] {
            match serde_json::from_str::<Access>(l) {
                Ok(a) => records.push(a),
                Err(_) => damaged += 1,
            }
        }
        Ok(Batch { records, lines: lines[..taken].to_vec(), dropped: self.dropped() + damaged })
    }

    /// Forgets a delivered batch: exactly its lines (records queued, or
    /// dropped for room, since it was read are not touched by mistake).
    pub fn ack(&self, batch: &Batch) -> Result<()> {
        let mut count = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let delivered: std::collections::HashSet<&String> = batch.lines.iter().collect();
        let mut lines = self.lines()?;
        lines.retain(|l| !delivered.contains(l));
        self.rewrite(&lines)?;
        self.set_dropped(self.dropped().saturating_sub(batch.dropped))?;
        *count = Some(lines.len());
        Ok(())
    }
}

/// Records read from the queue for one delivery.
pub struct Batch {
    pub records: Vec<Access>,
    /// The queue's lines the records were read from.
    pub lines: Vec<String>,
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_core::evidence::AccessSource;

    fn access(i: u32) -> Access {
        let at = chrono::Utc::now();
        Access {
            id: format!("r{i}"),
            at,
            last_at: at,
            count: 1,
            path: "/x".into(),
            host: None,
            source: AccessSource::Inotify,
            process: None,
            by_owner: false,
        }
    }

    #[test]
    fn records_survive_a_restart_in_order_and_the_oldest_go_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::with_limit(dir.path(), 3);
        for i in 0..5 {
            q.push(&access(i)).unwrap();
        }
        // A new agent process: same directory.
        let q = Queue::with_limit(dir.path(), 3);
        let batch = q.peek(10).unwrap();
        let ids: Vec<&str> = batch.records.iter().map(|a| a.id.as_str()).collect();
        assert_eq!((ids, batch.dropped), (vec!["r2", "r3", "r4"], 2));
        q.push(&access(5)).unwrap();
        q.ack(&batch).unwrap();
        let rest = q.peek(10).unwrap();
        // r2 made room for r5 after it was read, so it counts as dropped too.
        assert_eq!((rest.records.len(), rest.records[0].id.as_str(), rest.dropped), (1, "r5", 1));
        q.ack(&rest).unwrap();
        let empty = q.peek(10).unwrap();
        assert_eq!((empty.lines.len(), empty.dropped), (0, 0));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join(QUEUE)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_flood_drops_a_tenth_at_a_time_and_counts_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::with_limit(dir.path(), 100);
        for i in 0..250 {
            q.push(&access(i)).unwrap();
        }
        let b = q.peek(1000).unwrap();
        assert!(b.records.len() <= 100, "{}", b.records.len());
        assert_eq!(b.records.len() as u64 + b.dropped, 250, "every record delivered or counted");
        assert_eq!(b.records.last().unwrap().id, "r249", "the newest are kept");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path());
        q.push(&access(1)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(QUEUE))
            .unwrap()
            .write_all(b"{\"id\":\"r")
            .unwrap();
        let q = Queue::new(dir.path());
        let b = q.peek(10).unwrap();
        assert_eq!((b.records.len(), b.dropped), (1, 1));
    }
}
