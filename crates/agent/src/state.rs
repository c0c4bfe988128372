//! The agent's state directory (0700): its credential (0600), what it
//! placed (0600, never a secret), and the backups of files it merged into.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use honeytrail_core::template::PlacementTemplate;
use serde::{Deserialize, Serialize};

use crate::place::Kept;

const STATE: &str = "state.json";
const CREDENTIAL: &str = "credential";

/// What the agent remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub server: String,
    pub ca_file: Option<PathBuf>,
    pub root: PathBuf,
    pub agent_id: i64,
    pub template: PlacementTemplate,
    pub profile: String,
    pub heartbeat_seconds: u64,
    pub files: Vec<Kept>,
}

/// The state directory.
pub struct Dir {
    pub path: PathBuf,
    /// This run made it (so a failed enrolment takes it away again).
    pub made: bool,
    /// The backups directory was there before this run.
    had_backups: bool,
}

impl Dir {
    /// Makes the directory (0700) if needed and checks it can be written,
    /// before anything is asked of the server.
    pub fn prepare(path: &Path) -> Result<Dir> {
        let made = !path.exists();
        let had_backups = path.join("backups").exists();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create the state directory {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the state directory {} private", path.display()))?;
        let probe = path.join(".probe");
        let written = std::fs::write(&probe, b"x").and_then(|()| std::fs::remove_file(&probe));
        if let Err(e) = written {
            let dir = Dir { path: path.to_path_buf(), made, had_backups };
            dir.clean();
            return Err(anyhow!("cannot write in the state directory {}: {e}", path.display()));
        }
        Ok(Dir { path: path.to_path_buf(), made, had_backups })
    }

    pub fn open(path: &Path) -> Dir {
        Dir { path: path.to_path_buf(), made: false, had_backups: true }
    }

    pub fn enrolled(&self) -> bool {
        self.path.join(STATE).exists() || self.path.join(CREDENTIAL).exists()
    }

    fn write_private(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let target = self.path.join(name);
        let done = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        done.map_err(|e| {
            std::fs::remove_file(&tmp).ok();
            anyhow!("cannot write {}: {e}", target.display())
        })
    }

    pub fn save_credential(&self, credential: &str) -> Result<()> {
        self.write_private(CREDENTIAL, credential.as_bytes())
    }

    pub fn credential(&self) -> Result<String> {
        let path = self.path.join(CREDENTIAL);
        let c = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}: is this host enrolled (enroll first)?", path.display()))?;
        Ok(c.trim().to_string())
    }

    pub fn save(&self, state: &State) -> Result<()> {
        self.write_private(STATE, &serde_json::to_vec_pretty(state)?)
    }

    pub fn load(&self) -> Result<State> {
        let path = self.path.join(STATE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}: is this host enrolled (enroll first)?", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
    }

    /// Takes away what enrolling left here: the whole directory when this
    /// run made it, else the agent's own files.
    pub fn clean(&self) {
        if self.made {
            std::fs::remove_dir_all(&self.path).ok();
        } else {
            for name in [STATE, CREDENTIAL] {
                std::fs::remove_file(self.path.join(name)).ok();
            }
            if !self.had_backups {
                std::fs::remove_dir_all(self.path.join("backups")).ok();
            }
        }
    }
}
