//! Backups of a SQLite installation: the database copied while in use and
//! the data key beside it, and their restore into an empty data directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::context::{private_dir, write_private, App};

/// What a backup or restore wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub database: PathBuf,
    pub key: PathBuf,
    pub schema_version: i64,
    pub tokens: i64,
    pub incidents: i64,
}

/// Where a backup's data key goes: `FILE.key`.
pub fn key_beside(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The file of a `sqlite://PATH?options` URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

const POSTGRES: &str = "this installation uses PostgreSQL: back it up with pg_dump and keep the data key with it, restore with pg_restore (docs/operations.md, \"Backups\")";

impl App {
    /// Copies the database (consistent, while the server runs) to `file`
    /// and the data key to `FILE.key`, both mode 0600; overwrites nothing.
    pub async fn backup(&self, file: &Path) -> Result<BackupReport> {
        let url = self.config.database_url();
        if sqlite_file(&url).is_none() {
            bail!("{POSTGRES}");
        }
        let key = key_beside(file);
        for path in [file, key.as_path()] {
            if path.exists() {
                bail!("{} exists; a backup never overwrites a file: choose a new name", path.display());
            }
        }
        let key_text = self.data_key_text()?;
        let store = self.store().await?;
        let partial = {
            let mut name = file.as_os_str().to_owned();
            name.push(".partial");
            PathBuf::from(name)
        };
        // A partial copy of an earlier, failed run; none is the usual case.
        if partial.exists() {
            std::fs::remove_file(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        store
            .snapshot_to(&partial)
            .await
            .with_context(|| format!("cannot write the backup to {}", partial.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
        write_private(&key, &key_text)?;
        std::fs::rename(&partial, file).with_context(|| format!("cannot move the backup to {}", file.display()))?;
        let report = report(&store, file.to_path_buf(), key).await;
        store.close().await;
        report
    }

    /// Restores a backup into this installation's data directory, which
    /// must hold no database and no data key yet; migrates it if it is
    /// older than this build.
    pub async fn restore(&self, file: &Path) -> Result<BackupReport> {
        let url = self.config.database_url();
        let Some(target) = sqlite_file(&url) else { bail!("{POSTGRES}") };
        if self.config.secret_key.is_some() {
            bail!("HONEYTRAIL_SECRET_KEY is set: restore writes the backup's own data key; unset it and run again");
        }
        let key_target = self.config.secret_key_path();
        for path in [target.as_path(), key_target.as_path()] {
            if path.exists() {
                bail!(
                    "{} exists: restore goes into an empty data directory (choose one with --data-dir, or move it away first)",
                    path.display()
                );
            }
        }
        let header = std::fs::read(file).with_context(|| format!("cannot read the backup {}", file.display()))?;
        if !header.starts_with(b"SQLite format 3\0") {
            bail!("{} is not a SQLite database written by `honeytrail backup`", file.display());
        }
        let key = key_beside(file);
        let key_text = std::fs::read_to_string(&key).with_context(|| {
            format!("cannot read the backup's data key {}; it is written beside the backup", key.display())
        })?;
        honeytrail_core::secret::SecretBox::from_base64(&key_text)
            .with_context(|| format!("{} is not a data key", key.display()))?;
        private_dir(self.config.data_dir())?;
        write_private(&key_target, &key_text)?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            out.write_all(&header)?;
            out.sync_all()?;
        }
        let store = self.store().await?;
        let report = report(&store, target, key_target).await;
        store.close().await;
        report
    }

    /// The data key as its file holds it.
    fn data_key_text(&self) -> Result<String> {
        if let Some(key) = &self.config.secret_key {
            return Ok(format!("{}\n", key.trim()));
        }
        let path = self.config.secret_key_path();
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the data key {}: without it the backup's sealed secrets could not be opened",
                path.display()
            )
        })
    }
}

async fn report(store: &honeytrail_store::Store, database: PathBuf, key: PathBuf) -> Result<BackupReport> {
    let stats = store.stats().await?;
    Ok(BackupReport {
        database,
        key,
        schema_version: store.schema_version().await?,
        tokens: stats.tokens.iter().map(|(_, n)| n).sum(),
        incidents: stats.incidents.iter().map(|(_, n)| n).sum(),
    })
}
