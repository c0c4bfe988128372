//! Where the template says bait goes on this host, and writing, checking,
//! rotating and removing it, with the core's merge rules and its safe file
//! handling (no link another user planted is ever followed, nothing is
//! half-written, backups go to the agent's own state directory).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use honeytrail_core::bait::{self, BaitInput, Format, RoleSession, SessionPart};
use honeytrail_core::fleet::{DeliveredKey, PlacedFile, Presence};
use honeytrail_core::template::PlacementTemplate;
use honeytrail_place::{remove_made_dirs, BaitFile};
use serde::{Deserialize, Serialize};

use crate::host::{self, LocalUser};

/// One file the template puts bait in, with whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The path as seen on the host (inside the root).
    pub path: String,
    pub user: Option<String>,
    /// The owner a new file gets.
    pub owner: (u32, u32),
}

/// The files the template names on this host: for a `~/…` path, one in
/// the home of every local user who logs in (people and root) and whose
/// home exists; else the one path.
pub fn targets(root: &Path, template: &PlacementTemplate) -> Result<Vec<Target>> {
    let users = host::users(root)?;
    let by_name = |name: &str| -> Result<&LocalUser> {
        users.iter().find(|u| u.name == name).ok_or_else(|| {
            anyhow!(
                "template {}: owner {name} is not a user in {}",
                template.name,
                host::under(root, "/etc/passwd").display()
            )
        })
    };
    let fixed_owner = template.owner.as_deref().map(by_name).transpose()?;
    if let Some(rest) = template.path.strip_prefix("~/") {
        let out: Vec<Target> = users
            .iter()
            .filter(|u| u.logs_in() && u.is_person_or_root() && u.home.starts_with('/'))
            .filter(|u| host::under(root, &u.home).is_dir())
            .map(|u| Target {
                path: format!("{}/{rest}", u.home.trim_end_matches('/')),
                user: Some(u.name.clone()),
                owner: fixed_owner.map(|o| (o.uid, o.gid)).unwrap_or((u.uid, u.gid)),
            })
            .collect();
        if out.is_empty() {
            bail!(
                "template {}: no local user with a home directory and a login shell in {}; nothing to place",
                template.name,
                host::under(root, "/etc/passwd").display()
            );
        }
        return Ok(out);
    }
    let owner = fixed_owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
    Ok(vec![Target { path: template.path.clone(), user: Some(template.owner.clone().unwrap_or("root".into())), owner }])
}

/// A bait file as the agent keeps it in its state: enough to check it and
/// to take it out again, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub path: String,
    pub user: Option<String>,
    pub digest: String,
    /// The agent made the file (so removing the bait removes the file).
    pub created: bool,
    /// The directories the agent made for it, outermost first (removed
    /// with the file when they hold nothing else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub made_dirs: Vec<String>,
}

impl Kept {
    pub fn placed(&self) -> PlacedFile {
        PlacedFile { path: self.path.clone(), user: self.user.clone(), digest: self.digest.clone() }
    }
}

/// What the file held before the agent wrote it, to put back on failure.
pub struct Undo {
    path: String,
    before: Option<String>,
    made_dirs: Vec<String>,
}

/// The files and settings placing works with.
pub struct Placer<'a> {
    pub root: &'a Path,
    pub backups: PathBuf,
    pub format: Format,
    pub profile: String,
    pub mode: u32,
}

impl Placer<'_> {
    pub fn new<'a>(
        root: &'a Path,
        state_dir: &Path,
        template: &PlacementTemplate,
        profile: &str,
    ) -> Result<Placer<'a>> {
        let format: Format = template.format.parse().map_err(|e| anyhow!("template {}: {e}", template.name))?;
        Ok(Placer {
            root,
            backups: state_dir.join("backups"),
            format,
            profile: profile.to_string(),
            mode: template.mode,
        })
    }

    /// The bait entry for `key`; `times` are its session's expiry and start,
    /// as [`DeliveredKey::expiration_text`] and [`DeliveredKey::issued_text`]
    /// write them.
    fn entry<'k>(&'k self, key: &'k DeliveredKey, times: &'k (Option<String>, Option<String>)) -> BaitInput<'k> {
        let session = key.session.as_ref().zip(times.0.as_deref()).map(|(s, expiration)| SessionPart {
            token: &s.token,
            expiration,
            role: match (&s.role_id, &s.role_arn, times.1.as_deref()) {
                (Some(id), Some(arn), Some(issued)) => Some(RoleSession { id, arn, issued }),
                _ => None,
            },
        });
        BaitInput {
            access_key_id: &key.access_key_id,
            secret_access_key: &key.secret_access_key,
            profile: &self.profile,
            region: &key.region,
            session,
        }
    }

    fn open(&self, path: &str) -> Result<BaitFile> {
        BaitFile::open_under(self.root, Path::new(path)).map_err(|e| anyhow!("{e}"))
    }

    /// Writes the key into `t`: merged into what is there (a real profile
    /// of the same name is never replaced), atomically, owner and mode kept
    /// (a new file: the user's, the template's mode).
    pub fn write(&self, t: &Target, key: &DeliveredKey) -> Result<(Kept, Undo)> {
        let file = self.open(&t.path)?.for_new_file(Some(t.owner), self.mode);
        let before = file.existing.clone();
        let made_dirs = file.made_dirs().to_vec();
        let times = (key.expiration_text(), key.issued_text());
        let input = self.entry(key, &times);
        let written = bait::merge(self.format, before.as_deref().unwrap_or(""), &input, false)
            .map_err(|e| anyhow!("not writing {}: {e}", t.path))
            .and_then(|merged| {
                file.replace(&merged.content, &self.backups).map_err(|e| anyhow!("{e}"))?;
                Ok(merged)
            });
        let merged = match written {
            Ok(m) => m,
            Err(e) => {
                // Nothing written: the directories made for it go again.
                if let Err(left) = remove_made_dirs(self.root, &made_dirs) {
                    return Err(e.context(format!("and a directory made for it is left: {left}")));
                }
                return Err(e);
            }
        };
        let digest = bait::entry_digest(self.format, &merged.content, &self.profile)
            .ok_or_else(|| anyhow!("{}: the entry written cannot be found again", t.path))?;
        Ok((
            Kept {
                path: t.path.clone(),
                user: t.user.clone(),
                digest,
                created: before.is_none(),
                made_dirs: made_dirs.clone(),
            },
            Undo { path: t.path.clone(), before, made_dirs },
        ))
    }

    /// Puts a file back as it was before [`Placer::write`].
    pub fn undo(&self, u: &Undo) -> Result<()> {
        let file = self.open(&u.path)?;
        match &u.before {
            None => {
                file.remove().map_err(|e| anyhow!("{e}"))?;
                remove_made_dirs(self.root, &u.made_dirs).map_err(|e| anyhow!("{e}"))
            }
            Some(text) => file.replace(text, &self.backups).map(|_| ()).map_err(|e| anyhow!("{e}")),
        }
    }

    /// Whether bait may be written at `t`, checked without writing or
    /// making anything: `Err` says what is there that makes it unsafe (a
    /// link another user planted, a file with extra hard links, a FIFO…).
    pub fn check(&self, t: &Target) -> Result<(), String> {
        BaitFile::look_under(self.root, Path::new(&t.path)).map(|_| ()).map_err(|e| e.message)
    }

    /// Whether the entry is still in the file as written, and, when it is
    /// not, what the agent saw there.
    pub fn presence(&self, k: &Kept) -> (Presence, Option<String>) {
        match BaitFile::look_under(self.root, Path::new(&k.path)) {
            Err(e) => (Presence::Unreadable, Some(e.message)),
            Ok(None) => (Presence::Missing, Some("the file is gone".into())),
            Ok(Some(f)) => match bait::entry_digest(self.format, f.existing.as_deref().unwrap_or(""), &self.profile) {
                None => (Presence::Missing, Some("the file is there without the honey entry".into())),
                Some(d) if d == k.digest => (Presence::Present, None),
                Some(_) => (Presence::Altered, Some("the honey entry was changed".into())),
            },
        }
    }

    /// Writes `key` in place of the entry in `k` (a rotation): everything
    /// else in the file unchanged. Returns the file's new record and how to
    /// put the old content back.
    pub fn rotate(&self, k: &Kept, key: &DeliveredKey) -> Result<(Kept, Undo)> {
        let file = self.open(&k.path)?;
        let before = file.existing.clone().ok_or_else(|| anyhow!("{}: the bait file is gone", k.path))?;
        let times = (key.expiration_text(), key.issued_text());
        let entry = bait::render(self.format, &self.entry(key, &times));
        let content = bait::replace_entry(self.format, &before, &self.profile, &entry)
            .ok_or_else(|| anyhow!("{}: the honey entry is no longer in the file", k.path))?;
        file.replace(&content, &self.backups).map_err(|e| anyhow!("{e}"))?;
        let digest = bait::entry_digest(self.format, &content, &self.profile)
            .ok_or_else(|| anyhow!("{}: the entry written cannot be found again", k.path))?;
        Ok((Kept { digest, ..k.clone() }, Undo { path: k.path.clone(), before: Some(before), made_dirs: Vec::new() }))
    }

    /// Takes the entry out of `k`, every other byte unchanged; a file the
    /// agent made and that holds nothing else goes altogether. A file
    /// already without the entry is left alone. All or nothing: `Ok` when
    /// the entry is out (an empty directory the agent made that cannot go
    /// is only warned about: the bait is gone), `Err` when the file is as
    /// it was.
    pub fn remove(&self, k: &Kept) -> Result<()> {
        let Some(file) = BaitFile::look_under(self.root, Path::new(&k.path)).map_err(|e| anyhow!("{e}"))? else {
            return Ok(());
        };
        let text = file.existing.clone().unwrap_or_default();
        let Some(rest) = bait::unmerge(self.format, &text, &self.profile) else { return Ok(()) };
        if k.created && rest.trim().is_empty() {
            file.remove().map_err(|e| anyhow!("{e}"))?;
            if let Err(e) = remove_made_dirs(self.root, &k.made_dirs) {
                eprintln!("warning: the bait is out of {}, but a directory made for it stays: {e}", k.path);
            }
            Ok(())
        } else {
            file.replace(&rest, &self.backups).map(|_| ()).map_err(|e| anyhow!("{e}"))
        }
    }
}
