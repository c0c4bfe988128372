//! Writing bait into a file that someone else may control, safely.
//!
//! This crate is the only one that writes bait to disk; the command line
//! (through `honeytrail-app`'s `render --into`) and the fleet agent use it.
//! It knows nothing of tokens, databases or networks: `honeytrail-core`
//! renders the bytes, this crate puts them in place.
//!
//! Bait goes into users' home directories, which those users control, often
//! by a process running as root. A planted link (`~/.aws` → `/etc`,
//! `credentials` → `/etc/shadow`, a hard link to another file) must never
//! make honeytrail read, overwrite or chown another file. So:
//!
//! - every path component is opened relative to its parent's handle with
//!   `O_NOFOLLOW`; a symbolic link is followed only when it belongs to root
//!   or to the user honeytrail runs as (a link someone else planted is
//!   refused, like the kernel's `protected_symlinks`), and its target is
//!   walked the same way;
//! - the bait file itself must be a regular file with one link;
//! - the new content goes into a temporary file made with `O_EXCL` in the
//!   same directory handle, given the old file's owner and mode (a new file
//!   gets the directory's owner and 0600), synced, then renamed over the old
//!   name: readers see the old file or the new one, never half of either;
//! - the previous content is kept in a backup directory of honeytrail's own,
//!   never beside the bait, where `ls ~/.aws` would show it;
//! - run as root, the file itself is written (and deleted) with the rights
//!   of the user who owns its directory, when that user also owns the file
//!   (Linux: the writing thread's own uid, gid and groups are switched, and
//!   switched back before anything else runs on it): the kernel then
//!   refuses what that user could not do. Without the capability to switch
//!   (`CAP_SETUID`, `CAP_SETGID`) it is written as root, with the rules above.
//!
//! Nothing written on the host names honeytrail: the temporary file is
//! `.<name>.<random>` and exists only until the rename.

#![cfg(unix)]

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// The largest bait file read back (credentials and `.env` files are small).
const MAX_FILE: u64 = 4 << 20;
/// How many symbolic links one path may pass through.
const MAX_LINKS: u32 = 16;

/// Why a bait file could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceError {
    pub path: PathBuf,
    pub message: String,
    /// A directory on the way does not exist (only when looking, not writing).
    pub missing: bool,
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for PlaceError {}

fn fail(path: &Path, message: impl Into<String>) -> PlaceError {
    PlaceError { path: path.to_path_buf(), message: message.into(), missing: false }
}

fn io(path: &Path, what: &str, e: impl fmt::Display) -> PlaceError {
    fail(path, format!("cannot {what}: {e}"))
}

/// A bait file, opened without following links anyone else planted: the
/// directory it is in (held open, so a swap of a path component meanwhile
/// changes nothing), its name there, and what it holds now.
#[derive(Debug)]
pub struct BaitFile {
    path: PathBuf,
    dir: OwnedFd,
    name: String,
    /// The current content, `None` when the file does not exist yet.
    pub existing: Option<String>,
    owner: (u32, u32),
    mode: u32,
    /// The directories made on the way, outermost first (paths inside the root).
    made: Vec<String>,
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether a link owned by `uid` may be followed: root's and our own.
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

fn open_dir(at: impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(at, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

fn open_root(path: &Path, root: &Path) -> Result<OwnedFd, PlaceError> {
    rustix::fs::openat(CWD, root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| io(path, &format!("open the root {}", root.display()), e))
}

/// The components of a path, as names ("." dropped, ".." kept).
fn names(p: &Path) -> Result<Vec<String>, ()> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => out.push("..".to_string()),
            Component::Normal(n) => out.push(n.to_str().ok_or(())?.to_string()),
        }
    }
    Ok(out)
}

/// Opens the directory `dir` (absolute, inside `root`) component by
/// component; `..` and absolute link targets never leave `root`. Missing
/// directories are made (0700, owned like their parent) when `create`.
fn walk(
    path: &Path,
    root: &Path,
    dir: &Path,
    create: bool,
    links: &mut u32,
    made: &mut Vec<String>,
) -> Result<OwnedFd, PlaceError> {
    let mut stack = vec![open_root(path, root)?];
    // The names of the directories on the stack below the root.
    let mut at: Vec<String> = Vec::new();
    let mut pending: std::collections::VecDeque<String> =
        names(dir).map_err(|()| fail(path, "the path is not valid UTF-8"))?.into();
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
                at.pop();
            }
            continue;
        }
        let here = stack.last().expect("the root stays on the stack");
        match open_dir(here, &name) {
            Ok(fd) => {
                stack.push(fd);
                at.push(name);
            }
            Err(Errno::NOENT) if create => {
                let parent = rustix::fs::fstat(here).map_err(|e| io(path, "inspect a directory", e))?;
                match rustix::fs::mkdirat(here, name.as_str(), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {
                        made.push(format!("/{}", at.iter().chain([&name]).cloned().collect::<Vec<_>>().join("/")))
                    }
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(io(path, &format!("create the directory {name}"), e)),
                }
                let fd = open_dir(here, &name).map_err(|e| io(path, &format!("open the new directory {name}"), e))?;
                if euid() == 0 {
                    set_owner(&fd, (parent.st_uid, parent.st_gid)).map_err(|e| io(path, "set the owner", e))?;
                }
                stack.push(fd);
                at.push(name);
            }
            Err(Errno::NOENT) => {
                return Err(PlaceError { missing: true, ..fail(path, format!("the directory {name} does not exist")) })
            }
            Err(Errno::NOTDIR | Errno::LOOP) => {
                let st = rustix::fs::statat(here, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io(path, &format!("inspect {name}"), e))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                    return Err(fail(path, format!("{name} is not a directory")));
                }
                let target = follow(path, here, &name, st.st_uid, links)?;
                if target.is_absolute() {
                    stack.truncate(1);
                    at.clear();
                }
                let mut front = names(&target).map_err(|()| fail(path, "a link target is not valid UTF-8"))?;
                front.extend(pending.drain(..));
                pending = front.into();
            }
            Err(e) => return Err(io(path, &format!("open the directory {name}"), e)),
        }
    }
    Ok(stack.pop().expect("the root stays on the stack"))
}

/// Removes the directories `made` (paths inside `root`, outermost first, as
/// [`BaitFile::made_dirs`] lists them), innermost first, each only while it
/// is an empty directory: one holding anything (the user put a file there
/// since) stays, with the ones around it. Links are not followed.
pub fn remove_made_dirs(root: &Path, made: &[String]) -> Result<(), PlaceError> {
    for dir in made.iter().rev() {
        let path = Path::new(dir);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            continue;
        };
        let mut links = 0;
        let parent_fd = match walk(path, root, parent, false, &mut links, &mut Vec::new()) {
            Ok(fd) => fd,
            Err(e) if e.missing => continue,
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => {}
            Err(Errno::NOENT) => {}
            Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => return Ok(()),
            Err(e) => return Err(io(path, "remove a directory it made", e)),
        }
    }
    Ok(())
}

/// Runs `f` with the rights of `who` (uid, gid; no other group) on this
/// thread only, and switches back before returning, also when `f` panics.
/// When the switch is refused (no `CAP_SETUID`), `f` runs as before.
#[cfg(target_os = "linux")]
fn as_user<T>(who: Option<(u32, u32)>, f: impl FnOnce() -> T) -> T {
    use rustix::fs::{Gid, Uid};
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    /// Puts this thread's identity back; a thread that cannot be put back
    /// must not run anything else, so the process stops.
    struct Back {
        uid: Uid,
        gid: Gid,
        groups: Vec<Gid>,
    }
    impl Drop for Back {
        fn drop(&mut self) {
            let back = set_thread_res_uid(None, Some(self.uid), None)
                .and_then(|()| set_thread_res_gid(None, Some(self.gid), None))
                .and_then(|()| set_thread_groups(&self.groups));
            if back.is_err() {
                eprintln!("cannot switch a thread back to its own identity after writing a file; stopping");
                std::process::abort();
            }
        }
    }
    let Some((uid, gid)) = who else { return f() };
    let Ok(groups) = rustix::process::getgroups() else { return f() };
    let back = Back { uid: rustix::process::geteuid(), gid: rustix::process::getegid(), groups };
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    // Groups and gid first: once the uid is not root, they cannot be changed.
    let switched = set_thread_groups(&[gid])
        .and_then(|()| set_thread_res_gid(None, Some(gid), None))
        .and_then(|()| set_thread_res_uid(None, Some(uid), None));
    if switched.is_err() {
        drop(back); // what was switched goes back
        return f();
    }
    let out = f();
    drop(back);
    out
}

#[cfg(not(target_os = "linux"))]
fn as_user<T>(_who: Option<(u32, u32)>, f: impl FnOnce() -> T) -> T {
    f()
}

/// The target of the link `name` owned by `uid`, if it may be followed.
fn follow(path: &Path, at: impl AsFd, name: &str, uid: u32, links: &mut u32) -> Result<PathBuf, PlaceError> {
    if !trusted(uid) {
        return Err(fail(
            path,
            format!(
                "{name} is a symbolic link owned by uid {uid}; links another user controls are never followed (it could point anywhere, /etc/shadow included)"
            ),
        ));
    }
    *links += 1;
    if *links > MAX_LINKS {
        return Err(fail(path, "too many symbolic links"));
    }
    let target =
        rustix::fs::readlinkat(at, name, Vec::new()).map_err(|e| io(path, &format!("read the link {name}"), e))?;
    Ok(PathBuf::from(target.to_string_lossy().into_owned()))
}

fn set_owner(fd: impl AsFd, (uid, gid): (u32, u32)) -> rustix::io::Result<()> {
    rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))
}

impl BaitFile {
    /// Opens `path` (absolute) for bait: its directory is walked without
    /// following links others own, made when missing; the file, if there,
    /// must be a regular file with a single link.
    pub fn open(path: &Path) -> Result<BaitFile, PlaceError> {
        BaitFile::open_under(Path::new("/"), path)
    }

    /// [`BaitFile::open`] for `path` inside another root directory (an image
    /// being built, a mounted disk): links and `..` resolve inside it.
    pub fn open_under(root: &Path, path: &Path) -> Result<BaitFile, PlaceError> {
        BaitFile::open_with(root, path, true)
    }

    /// Opens `path` inside `root` to read it, making nothing: `None` when
    /// the file or a directory on the way is not there.
    pub fn look_under(root: &Path, path: &Path) -> Result<Option<BaitFile>, PlaceError> {
        match BaitFile::open_with(root, path, false) {
            Ok(f) if f.exists() => Ok(Some(f)),
            Ok(_) => Ok(None),
            Err(e) if e.missing => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_with(root: &Path, path: &Path, create: bool) -> Result<BaitFile, PlaceError> {
        if !path.is_absolute() {
            return Err(fail(path, "the path must be absolute"));
        }
        let mut links = 0;
        let mut made = Vec::new();
        let mut current = path.to_path_buf();
        // The file's own links followed, to say where a refused file was reached.
        let mut through: Vec<PathBuf> = Vec::new();
        loop {
            let (Some(dir), Some(name)) = (current.parent(), current.file_name().and_then(|n| n.to_str())) else {
                return Err(fail(path, "the path names no file"));
            };
            let name = name.to_string();
            let dir_fd = walk(path, root, dir, create, &mut links, &mut made)?;
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            match rustix::fs::openat(&dir_fd, name.as_str(), flags, Mode::empty()) {
                Ok(fd) => {
                    return BaitFile::existing(path, dir_fd, name, fd, made).map_err(|mut e| {
                        if let Some(last) = through.last() {
                            e.message.push_str(&format!(" (reached through a symbolic link to {})", last.display()));
                        }
                        e
                    })
                }
                Err(Errno::NOENT) => {
                    let st = rustix::fs::fstat(&dir_fd).map_err(|e| io(path, "inspect the directory", e))?;
                    let owner = if euid() == 0 {
                        (st.st_uid, st.st_gid)
                    } else {
                        (euid(), rustix::process::getegid().as_raw())
                    };
                    return Ok(BaitFile {
                        path: path.to_path_buf(),
                        dir: dir_fd,
                        name,
                        existing: None,
                        owner,
                        mode: 0o600,
                        made,
                    });
                }
                Err(Errno::LOOP) => {
                    let st = rustix::fs::statat(&dir_fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| io(path, "inspect the file", e))?;
                    let target = follow(path, &dir_fd, &name, st.st_uid, &mut links)?;
                    current = if target.is_absolute() { target } else { dir.join(target) };
                    through.push(current.clone());
                }
                Err(e) => return Err(io(path, "open the file", e)),
            }
        }
    }

    fn existing(
        path: &Path,
        dir: OwnedFd,
        name: String,
        fd: OwnedFd,
        made: Vec<String>,
    ) -> Result<BaitFile, PlaceError> {
        let st = rustix::fs::fstat(&fd).map_err(|e| io(path, "inspect the file", e))?;
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => None,
            FileType::Directory => Some("a directory"),
            FileType::Fifo => Some("a FIFO (named pipe)"),
            FileType::CharacterDevice => Some("a character device"),
            FileType::BlockDevice => Some("a block device"),
            FileType::Socket => Some("a socket"),
            _ => Some("not a regular file"),
        };
        if let Some(kind) = kind {
            return Err(fail(
                path,
                format!("{kind}, not a regular file; bait is read and written only in regular files"),
            ));
        }
        if st.st_nlink != 1 {
            return Err(fail(
                path,
                format!(
                    "the file has {} hard links: writing it could change another file; remove the extra links first",
                    st.st_nlink
                ),
            ));
        }
        if st.st_size as u64 > MAX_FILE {
            return Err(fail(
                path,
                format!("the file is {} bytes, larger than {} MiB; not a credentials file", st.st_size, MAX_FILE >> 20),
            ));
        }
        let mut text = String::new();
        std::fs::File::from(fd).take(MAX_FILE).read_to_string(&mut text).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => fail(path, "the file is not UTF-8 text; not a credentials file"),
            _ => io(path, "read the file", e),
        })?;
        Ok(BaitFile {
            path: path.to_path_buf(),
            dir,
            name,
            existing: Some(text),
            owner: (st.st_uid, st.st_gid),
            mode: st.st_mode & 0o7777,
            made,
        })
    }

    /// The directories opening it made (it did not exist), outermost
    /// first: to remove with [`remove_made_dirs`] when the bait goes.
    pub fn made_dirs(&self) -> &[String] {
        &self.made
    }

    /// Whether the file is there yet.
    pub fn exists(&self) -> bool {
        self.existing.is_some()
    }

    /// The owner and mode a file made here gets (an existing file keeps its
    /// own): e.g. the home directory's user and 0600.
    pub fn for_new_file(mut self, owner: Option<(u32, u32)>, mode: u32) -> BaitFile {
        if self.existing.is_none() {
            if let Some(o) = owner {
                self.owner = o;
            }
            self.mode = mode & 0o777;
        }
        self
    }

    /// Deletes the file (bait that was a whole file of its own), after
    /// checking it is still the one opened.
    pub fn remove(&self) -> Result<(), PlaceError> {
        if self.existing.is_none() {
            return Ok(());
        }
        as_user(self.writer(), || {
            rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty())
                .map_err(|e| io(&self.path, "delete the file", e))?;
            rustix::fs::fsync(&self.dir).map_err(|e| io(&self.path, "sync the directory", e))
        })
    }

    /// Whose rights the file is written with: the owner of its directory
    /// when that is not root and also the file's owner, and honeytrail runs
    /// as root; else none (as honeytrail runs).
    pub fn writer(&self) -> Option<(u32, u32)> {
        let dir = rustix::fs::fstat(&self.dir).ok()?;
        (euid() == 0 && dir.st_uid != 0 && dir.st_uid == self.owner.0).then_some(self.owner)
    }

    /// Replaces the file with `content` atomically, keeping its owner and
    /// mode (a new file: the directory's owner, 0600), after keeping the
    /// old content in `backups` (honeytrail's own directory, made 0700).
    /// Returns the backup's path.
    pub fn replace(&self, content: &str, backups: &Path) -> Result<Option<PathBuf>, PlaceError> {
        let backup = match &self.existing {
            Some(old) => Some(self.keep(old, backups)?),
            None => None,
        };
        as_user(self.writer(), || self.write(content))?;
        Ok(backup)
    }

    /// Writes `content` into a new file beside this one, then renames it over.
    fn write(&self, content: &str) -> Result<(), PlaceError> {
        let tmp = format!(".{}.{:016x}", self.name, rand::random::<u64>());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| io(&self.path, "create a file beside it", e))?;
        let written = (|| -> Result<(), String> {
            if euid() == 0 || self.owner.0 == euid() {
                set_owner(&fd, self.owner).map_err(|e| format!("set the owner: {e}"))?;
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode)).map_err(|e| format!("set the mode: {e}"))?;
            let mut f = std::fs::File::from(fd);
            f.write_all(content.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| format!("write: {e}"))?;
            rustix::fs::renameat(&self.dir, tmp.as_str(), &self.dir, self.name.as_str())
                .map_err(|e| format!("rename into place: {e}"))?;
            rustix::fs::fsync(&self.dir).map_err(|e| format!("sync the directory: {e}"))
        })();
        if let Err(message) = written {
            // Nothing half-written is left: the old file is untouched.
            rustix::fs::unlinkat(&self.dir, tmp.as_str(), AtFlags::empty()).ok();
            return Err(fail(&self.path, format!("cannot {message}; the file is unchanged")));
        }
        Ok(())
    }

    fn keep(&self, old: &str, backups: &Path) -> Result<PathBuf, PlaceError> {
        std::fs::create_dir_all(backups).map_err(|e| io(backups, "create the backup directory", e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(backups, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(backups, "make the backup directory private", e))?;
        let flat: String = self
            .path
            .to_string_lossy()
            .trim_start_matches('/')
            .chars()
            .map(|c| {
                if c == '/' {
                    '_'
                } else if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        keep_as(old, backups, &flat, &stamp)
    }
}

/// Writes a backup named `FLAT.STAMP`, or `FLAT.STAMP-N` with the first free
/// N when that name is taken (two backups of one file within the same
/// millisecond): a backup is never lost to a name, and never overwrites one.
fn keep_as(old: &str, backups: &Path, flat: &str, stamp: &str) -> Result<PathBuf, PlaceError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut n = 0u32;
    loop {
        let name = if n == 0 { format!("{flat}.{stamp}") } else { format!("{flat}.{stamp}-{n}") };
        let backup = backups.join(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&backup) {
            Ok(mut f) => {
                f.write_all(old.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io(&backup, "write the backup", e))?;
                return Ok(backup);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
            Err(e) => return Err(io(&backup, "create the backup", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    const NOBODY: u32 = 65534;

    #[test]
    fn backups_in_the_same_millisecond_get_their_own_names() {
        let dir = scratch();
        let stamp = "20261207T012200.123Z";
        let first = keep_as("one", dir.path(), "root_.aws_credentials", stamp).unwrap();
        let second = keep_as("two", dir.path(), "root_.aws_credentials", stamp).unwrap();
        let third = keep_as("three", dir.path(), "root_.aws_credentials", stamp).unwrap();
        assert_eq!(first.file_name().unwrap(), "root_.aws_credentials.20261207T012200.123Z");
        assert_eq!(second.file_name().unwrap(), "root_.aws_credentials.20261207T012200.123Z-1");
        assert_eq!(third.file_name().unwrap(), "root_.aws_credentials.20261207T012200.123Z-2");
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!((read(&first), read(&second), read(&third)), ("one".into(), "two".into(), "three".into()));
    }

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn writes_new_and_existing_files_atomically_with_backups_elsewhere() {
        let dir = scratch();
        let backups = dir.path().join("state/backups");
        let path = dir.path().join("home/ops/.aws/credentials");
        let file = BaitFile::open(&path).unwrap();
        assert_eq!(file.existing, None);
        assert_eq!(file.replace("[a]\n", &backups).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[a]\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let file = BaitFile::open(&path).unwrap();
        assert_eq!(file.existing.as_deref(), Some("[a]\n"));
        let backup = file.replace("[a]\n[b]\n", &backups).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "[a]\n");
        assert!(backup.starts_with(&backups));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640, "mode kept");
        // Nothing but the bait beside the bait.
        let beside: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(beside, ["credentials"], "{beside:?}");
    }

    #[test]
    fn directories_made_for_bait_are_removed_with_it_unless_used_since() {
        let dir = scratch();
        let made_for = |p: &Path| BaitFile::open(p).unwrap().made_dirs().to_vec();
        let path = dir.path().join("home/ops/.aws/credentials");
        let made = made_for(&path);
        let base = dir.path().to_string_lossy().into_owned();
        assert_eq!(made, [format!("{base}/home"), format!("{base}/home/ops"), format!("{base}/home/ops/.aws")]);
        assert!(made_for(&path).is_empty(), "made once only");
        // Someone put a file in ops/ since: .aws goes, ops and home stay.
        std::fs::write(dir.path().join("home/ops/notes"), "mine\n").unwrap();
        remove_made_dirs(Path::new("/"), &made).unwrap();
        assert!(!dir.path().join("home/ops/.aws").exists());
        assert!(dir.path().join("home/ops/notes").exists());
        // Nothing else in them: all go; gone already is fine.
        std::fs::remove_file(dir.path().join("home/ops/notes")).unwrap();
        remove_made_dirs(Path::new("/"), &made).unwrap();
        assert!(!dir.path().join("home").exists());
        remove_made_dirs(Path::new("/"), &made).unwrap();
        // Inside another root, the paths are the root's own.
        let root = dir.path().join("image");
        std::fs::create_dir(&root).unwrap();
        let made = BaitFile::open_under(&root, Path::new("/etc/app/.env")).unwrap().made_dirs().to_vec();
        assert_eq!(made, ["/etc", "/etc/app"]);
        remove_made_dirs(&root, &made).unwrap();
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    /// As root, a file in a user's directory is written with that user's
    /// rights: what the user could not do (write into a directory of theirs
    /// they made read-only) fails, where root alone would have succeeded.
    #[cfg(target_os = "linux")]
    #[test]
    fn files_in_a_users_directory_are_written_as_that_user() {
        if euid() != 0 {
            eprintln!("skipped: switching to another user needs root (./scripts/test runs as root in CI)");
            return;
        }
        let dir = scratch();
        let backups = dir.path().join("state/backups");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
        let groups = rustix::process::getgroups().unwrap();
        let path = home.join("credentials");
        let file = BaitFile::open(&path).unwrap().for_new_file(Some((NOBODY, NOBODY)), 0o600);
        assert_eq!(file.writer(), Some((NOBODY, NOBODY)));
        file.replace("[a]\n", &backups).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (NOBODY, NOBODY, 0o600));
        // Back as root, with the groups it had.
        assert_eq!((euid(), rustix::process::getegid().as_raw()), (0, 0));
        assert_eq!(rustix::process::getgroups().unwrap(), groups);
        // The backup went to honeytrail's directory, as root.
        let file = BaitFile::open(&path).unwrap();
        let backup = file.replace("[a]\n[b]\n", &backups).unwrap().unwrap();
        assert_eq!(std::fs::metadata(&backup).unwrap().uid(), 0);

        // The user made the directory read-only: the user's write fails, the file is unchanged.
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o555)).unwrap();
        let err = BaitFile::open(&path).unwrap().replace("[c]\n", &backups).unwrap_err();
        assert!(err.message.contains("create a file beside it"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[a]\n[b]\n");
        assert!(BaitFile::open(&path).unwrap().remove().is_err(), "nor may the user delete it");
        assert_eq!(euid(), 0);
        // A read-only directory of root's own is still written (as root).
        let opt = dir.path().join("opt");
        std::fs::create_dir(&opt).unwrap();
        std::fs::set_permissions(&opt, std::fs::Permissions::from_mode(0o555)).unwrap();
        let env = BaitFile::open(&opt.join(".env")).unwrap();
        assert_eq!(env.writer(), None);
        env.replace("A=1\n", &backups).unwrap();
        // A file of another user's in the user's directory is written as root, not as either.
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let other = home.join("other");
        std::fs::write(&other, "x\n").unwrap();
        assert_eq!(BaitFile::open(&other).unwrap().writer(), None);
    }

    #[test]
    fn hard_links_and_special_files_are_refused() {
        let dir = scratch();
        let other = dir.path().join("shadow");
        std::fs::write(&other, "root:x:\n").unwrap();
        let path = dir.path().join("credentials");
        std::fs::hard_link(&other, &path).unwrap();
        let err = BaitFile::open(&path).unwrap_err();
        assert!(err.message.contains("2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "root:x:\n");
        let err = BaitFile::open(Path::new("/dev/null")).unwrap_err();
        assert!(err.message.contains("not a regular file"), "{err}");
        assert!(BaitFile::open(Path::new("relative/credentials")).is_err());
    }

    #[test]
    fn own_links_are_followed() {
        let dir = scratch();
        let real = dir.path().join("dotfiles/aws");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        symlink(&real, dir.path().join("home/.aws")).unwrap();
        let path = dir.path().join("home/.aws/credentials");
        BaitFile::open(&path).unwrap().replace("[x]\n", &dir.path().join("b")).unwrap();
        assert_eq!(std::fs::read_to_string(real.join("credentials")).unwrap(), "[x]\n");
    }

    #[test]
    fn a_root_keeps_links_and_dot_dot_inside_it() {
        let dir = scratch();
        let image = dir.path().join("image");
        std::fs::create_dir_all(image.join("root")).unwrap();
        std::fs::create_dir_all(image.join("srv/aws")).unwrap();
        // An absolute link inside the image means the image's /srv, not the host's.
        symlink("/srv/aws", image.join("root/.aws")).unwrap();
        let backups = dir.path().join("b");
        let bait = BaitFile::open_under(&image, Path::new("/root/.aws/credentials")).unwrap();
        assert!(!bait.exists());
        bait.for_new_file(None, 0o640).replace("[x]\n", &backups).unwrap();
        let written = image.join("srv/aws/credentials");
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "[x]\n");
        assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o777, 0o640);
        // `..` stops at the root: this is the image's /escape, never the host's.
        BaitFile::open_under(&image, Path::new("/../../escape")).unwrap().replace("y\n", &backups).unwrap();
        assert!(image.join("escape").exists());
        let again = BaitFile::open_under(&image, Path::new("/root/.aws/credentials")).unwrap();
        assert!(again.exists());
        again.remove().unwrap();
        assert!(!written.exists());
    }

    /// Links a user planted in their home directory, as root would meet
    /// them: none is followed, nothing outside is read, written or chowned.
    #[test]
    fn links_someone_else_planted_are_never_followed() {
        if euid() != 0 {
            eprintln!("skipped: planting another user's links needs root (./scripts/test runs as root in CI)");
            return;
        }
        let dir = scratch();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("shadow"), "root:x:\n").unwrap();
        let home = dir.path().join("home/mallory");
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
        let plant = |link: &Path, target: &Path| {
            std::fs::remove_file(link).ok();
            symlink(target, link).unwrap();
            std::os::unix::fs::lchown(link, Some(NOBODY), Some(NOBODY)).unwrap();
        };
        let backups = dir.path().join("state");
        // ~/.aws → /etc
        plant(&home.join(".aws"), &etc);
        let err = BaitFile::open(&home.join(".aws/credentials")).unwrap_err();
        assert!(err.message.contains("symbolic link owned by uid 65534"), "{err}");
        // ~/.aws/credentials → /etc/shadow
        std::fs::remove_file(home.join(".aws")).unwrap();
        std::fs::create_dir(home.join(".aws")).unwrap();
        plant(&home.join(".aws/credentials"), &etc.join("shadow"));
        assert!(BaitFile::open(&home.join(".aws/credentials")).is_err());
        // a relative link climbing out: ~/.aws/credentials → ../../../etc/shadow
        plant(&home.join(".aws/credentials"), Path::new("../../../etc/shadow"));
        assert!(BaitFile::open(&home.join(".aws/credentials")).is_err());
        // a link in the middle of the path: ~/app → /etc, bait at ~/app/.env
        plant(&home.join("app"), &etc);
        assert!(BaitFile::open(&home.join("app/.env")).is_err());
        // a hard link to a root file (same file system)
        std::fs::remove_file(home.join(".aws/credentials")).unwrap();
        std::fs::hard_link(etc.join("shadow"), home.join(".aws/credentials")).unwrap();
        assert!(BaitFile::open(&home.join(".aws/credentials")).is_err());
        assert_eq!(std::fs::read_to_string(etc.join("shadow")).unwrap(), "root:x:\n");
        let meta = std::fs::metadata(etc.join("shadow")).unwrap();
        assert_eq!((meta.uid(), meta.nlink()), (0, 2), "not chowned");
        assert!(!backups.exists(), "nothing read, nothing kept");
        // And a plain home: the new file and directory belong to the user.
        std::fs::remove_file(home.join(".aws/credentials")).unwrap();
        std::fs::remove_dir(home.join(".aws")).unwrap();
        BaitFile::open(&home.join(".aws/credentials")).unwrap().replace("[p]\n", &backups).unwrap();
        for p in [home.join(".aws"), home.join(".aws/credentials")] {
            assert_eq!(std::fs::metadata(&p).unwrap().uid(), NOBODY, "{}", p.display());
        }
    }
}
