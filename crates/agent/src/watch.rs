//! Who opens the bait: fanotify (open events, the opening process read
//! from /proc at once), inotify when fanotify is not allowed (opens only,
//! "no process information"), or the audit log (`--source auditd`).
//!
//! The watch is on each bait file's directory, with events for its
//! children, and matched by path: a bait file replaced atomically (an
//! editor, the agent's own rotation renaming over it) is still watched.
//! The agent's own opens are left out (by PID under fanotify and auditd;
//! by the moments it is at work on the files under inotify, which does
//! not say who opened). Opens of one file by one process within a few
//! seconds are one record with a count.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use honeytrail_core::evidence::{self, Access, AccessSource, Ancestor, Process};

use crate::host;
use crate::queue::Queue;

/// The source `--source` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// fanotify, else inotify.
    Auto,
    Fanotify,
    Inotify,
    /// Read this audit log (raw or enriched auditd format).
    Auditd(PathBuf),
    Off,
}

impl Source {
    pub fn parse(raw: &str, audit_log: &Path) -> Result<Source> {
        Ok(match raw {
            "auto" => Source::Auto,
            "fanotify" => Source::Fanotify,
            "inotify" => Source::Inotify,
            "auditd" => Source::Auditd(audit_log.to_path_buf()),
            "off" => Source::Off,
            other => bail!("--source {other:?}: use auto, fanotify, inotify, auditd or off"),
        })
    }
}

/// A bait file to watch: its path on the host and where it is here.
#[derive(Debug, Clone)]
pub struct Watched {
    pub host_path: String,
    pub real: PathBuf,
    /// The uid of the user whose own file the bait was merged into (their
    /// reads are marked `by_owner`); `None` for files the agent made.
    pub owner: Option<u32>,
}

/// What the watcher shares with the heartbeat loop.
pub struct Shared {
    pub queue: Queue,
    /// Woken when a record was queued: deliver it now.
    pub queued: Arc<tokio::sync::Notify>,
    /// Under inotify: until when opens are the agent's own.
    own_until: Mutex<Option<Instant>>,
}

impl Shared {
    pub fn new(queue: Queue) -> Shared {
        Shared { queue, queued: Arc::new(tokio::sync::Notify::new()), own_until: Mutex::new(None) }
    }

    /// Runs `f`, the agent's own work on the bait files: what inotify sees
    /// meanwhile (and just after) is not evidence.
    pub fn own<T>(&self, f: impl FnOnce() -> T) -> T {
        self.mark_own(Duration::from_secs(3600));
        let out = f();
        // inotify queues an event in the open itself; the watch thread reads it
        // within milliseconds (a loaded host: more), so a short grace covers
        // what was still queued.
        self.mark_own(Duration::from_millis(250));
        out
    }

    fn mark_own(&self, for_: Duration) {
        *self.own_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + for_);
    }

    fn is_own_moment(&self) -> bool {
        self.own_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some_and(|t| Instant::now() < t)
    }
}

/// Starts watching in a thread of its own; says which source it uses (or
/// why it fell back).
pub fn start(source: Source, files: Vec<Watched>, root: PathBuf, shared: Arc<Shared>) -> Result<AccessSource> {
    if files.is_empty() {
        bail!("no bait files to watch");
    }
    let (kind, backend): (AccessSource, Backend) = match source {
        Source::Off => bail!("file watching is off (--source off)"),
        Source::Fanotify => (AccessSource::Fanotify, Backend::Fanotify(Fanotify::new(&files)?)),
        Source::Inotify => (AccessSource::Inotify, Backend::Inotify(Inotify::new(&files)?)),
        Source::Auditd(log) => (AccessSource::Auditd, Backend::Audit(AuditTail::new(&log, &shared)?)),
        Source::Auto => match Fanotify::new(&files) {
            Ok(f) => (AccessSource::Fanotify, Backend::Fanotify(f)),
            Err(e) => {
                crate::say(&format!(
                    "warning: fanotify is not available ({e:#}); watching the bait with inotify instead: \
                     reads are reported with no process information. Run as root with CAP_SYS_ADMIN for the process details."
                ));
                (AccessSource::Inotify, Backend::Inotify(Inotify::new(&files)?))
            }
        },
    };
    let mut watcher = Watcher { files, root, shared, pending: Vec::new(), names: Names::default() };
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut backend = backend;
            loop {
                let opens = match backend.wait(&watcher) {
                    Ok(o) => o,
                    Err(e) => {
                        crate::say(&format!("error: watching the bait: {e:#}"));
                        std::thread::sleep(Duration::from_secs(5));
                        Vec::new()
                    }
                };
                for a in opens {
                    watcher.add(a);
                }
                watcher.flush(false);
            }
        })
        .context("cannot start the watching thread")?;
    Ok(kind)
}

struct Watcher {
    files: Vec<Watched>,
    root: PathBuf,
    shared: Arc<Shared>,
    /// Records of bursts still going on.
    pending: Vec<Access>,
    names: Names,
}

impl Watcher {
    /// The host path of a bait file at `real`, if it is one.
    fn bait(&self, real: &Path) -> Option<&str> {
        self.files.iter().find(|w| w.real == real).map(|w| w.host_path.as_str())
    }

    /// Whether `uid` owns the shared file at `host_path`.
    fn by_owner(&self, host_path: &str, uid: Option<u32>) -> bool {
        uid.is_some() && self.files.iter().any(|w| w.host_path == host_path && w.owner == uid)
    }

    fn add(&mut self, a: Access) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.continues(&a)) {
            p.absorb(&a);
            return;
        }
        self.pending.push(a);
    }

    /// Queues the records whose burst is over (all of them with `all`).
    fn flush(&mut self, all: bool) {
        let now = Utc::now();
        let (done, going): (Vec<Access>, Vec<Access>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|a| all || (now - a.last_at).num_seconds() > evidence::BURST_SECONDS);
        self.pending = going;
        for a in done {
            let a = a.bounded();
            if let Err(e) = self.shared.queue.push(&a) {
                crate::say(&format!("error: cannot queue a read of {}: {e:#}", a.path));
            }
            self.shared.queued.notify_one();
        }
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128 ^ u128::from(std::process::id());
        bytes.copy_from_slice(&t.to_le_bytes()[..12]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Backend {
    Fanotify(Fanotify),
    Inotify(Inotify),
    Audit(AuditTail),
}

impl Backend {
    /// Waits up to half a second for opens of bait files.
    fn wait(&mut self, w: &Watcher) -> Result<Vec<Access>> {
        match self {
            Backend::Fanotify(f) => f.wait(w),
            Backend::Inotify(i) => i.wait(w),
            Backend::Audit(a) => a.wait(w),
        }
    }
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("{} holds a NUL byte", p.display()))
}

/// The directories holding the bait files, once each.
fn parents(files: &[Watched]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = files.iter().filter_map(|w| w.real.parent().map(Path::to_path_buf)).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn poll_in(fd: i32, millis: i32) -> Result<bool> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, its count 1.
    let n = unsafe { libc::poll(&mut p, 1, millis) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e.into());
    }
    Ok(n > 0)
}

/// Renews the marks once a minute (a directory made anew is watched again;
/// a failure is retried next time), then waits up to half a second for
/// events on `fd`.
fn renew_then_poll(fd: i32, marked_at: Instant, renew: impl FnOnce() -> Result<()>) -> Result<bool> {
    if marked_at.elapsed() > Duration::from_secs(60) {
        if let Err(e) = renew() {
            crate::say(&format!("warning: renewing the watch: {e:#}"));
        }
    }
    poll_in(fd, 500)
}

/// Reads what is ready on a non-blocking descriptor.
fn read_ready(fd: i32, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) {
            return Ok(0);
        }
        return Err(e.into());
    }
    Ok(n as usize)
}

struct Fanotify {
    fd: std::os::fd::OwnedFd,
    dirs: Vec<PathBuf>,
    marked_at: Instant,
    overflowed: bool,
}

impl Fanotify {
    fn new(files: &[Watched]) -> Result<Fanotify> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            bail!("fanotify_init: {e} (it needs CAP_SYS_ADMIN)");
        }
        // SAFETY: `fd` was just returned to us and is owned by nothing else.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut f = Fanotify { fd, dirs: parents(files), marked_at: Instant::now(), overflowed: false };
        f.mark()?;
        Ok(f)
    }

    /// Marks every bait directory (again: a directory made anew is
    /// marked within a minute). The first failure is an error.
    fn mark(&mut self) -> Result<()> {
        use std::os::fd::AsRawFd;
        let mut marked = 0;
        let mut last = None;
        for d in &self.dirs {
            let c = cpath(d)?;
            // SAFETY: `c` is a NUL-terminated path; the result is checked.
            let r = unsafe {
                libc::fanotify_mark(
                    self.fd.as_raw_fd(),
                    libc::FAN_MARK_ADD,
                    libc::FAN_OPEN | libc::FAN_EVENT_ON_CHILD,
                    libc::AT_FDCWD,
                    c.as_ptr(),
                )
            };
            if r < 0 {
                last = Some(format!("{}: {}", d.display(), std::io::Error::last_os_error()));
            } else {
                marked += 1;
            }
        }
        self.marked_at = Instant::now();
        match (marked, last) {
            (0, Some(e)) => bail!("fanotify_mark {e}"),
            (_, Some(e)) => {
                crate::say(&format!("warning: not watching {e}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn wait(&mut self, w: &Watcher) -> Result<Vec<Access>> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        if !renew_then_poll(fd, self.marked_at, || self.mark())? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let own = std::process::id() as i32;
        let header = std::mem::size_of::<libc::fanotify_event_metadata>();
        loop {
            let n = read_ready(fd, &mut buf)?;
            if n == 0 {
                break;
            }
            let mut at = 0;
            while at + header <= n {
                // SAFETY: at least `header` bytes are there; read unaligned.
                let meta: libc::fanotify_event_metadata =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let len = meta.event_len as usize;
                if meta.vers != libc::FANOTIFY_METADATA_VERSION || len < header || at + len > n {
                    bail!("fanotify: events of an unknown format (version {})", meta.vers);
                }
                at += len;
                if meta.mask & libc::FAN_Q_OVERFLOW != 0 && !self.overflowed {
                    self.overflowed = true;
                    crate::say("warning: fanotify's queue overflowed; some opens were not seen");
                }
                if meta.fd < 0 {
                    continue;
                }
                // SAFETY: the kernel gave us this descriptor; we own it now.
                let file = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(meta.fd) };
                if meta.pid == own {
                    continue;
                }
                let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else { continue };
                drop(file);
                let Some(host_path) = w.bait(&real).map(str::to_string) else { continue };
                let process = snapshot(meta.pid as u32, &w.root, &w.names);
                let mut a = opened(host_path, AccessSource::Fanotify, Some(process));
                a.by_owner = w.by_owner(&a.path, a.process.as_ref().and_then(|p| p.uid));
                out.push(a);
            }
        }
        Ok(out)
    }
}

/// A read of the bait file at `host_path` now, with a fresh ID.
fn opened(host_path: String, source: AccessSource, process: Option<Process>) -> Access {
    let now = Utc::now();
    Access {
        id: random_id(),
        at: now,
        last_at: now,
        count: 1,
        path: host_path,
        host: None,
        source,
        process,
        by_owner: false,
    }
}

struct Inotify {
    fd: std::os::fd::OwnedFd,
    dirs: HashMap<i32, PathBuf>,
    all: Vec<PathBuf>,
    marked_at: Instant,
}

impl Inotify {
    fn new(files: &[Watched]) -> Result<Inotify> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            bail!("inotify_init1: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut i = Inotify { fd, dirs: HashMap::new(), all: parents(files), marked_at: Instant::now() };
        i.mark()?;
        Ok(i)
    }

    fn mark(&mut self) -> Result<()> {
        use std::os::fd::AsRawFd;
        let mut last = None;
        for d in &self.all {
            let c = cpath(d)?;
            // SAFETY: `c` is a NUL-terminated path; the result is checked.
            let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), libc::IN_OPEN) };
            if wd < 0 {
                last = Some(format!("{}: {}", d.display(), std::io::Error::last_os_error()));
            } else {
                self.dirs.insert(wd, d.clone());
            }
        }
        self.marked_at = Instant::now();
        match (self.dirs.is_empty(), last) {
            (true, Some(e)) => bail!("inotify_add_watch {e}"),
            _ => Ok(()),
        }
    }

    fn wait(&mut self, w: &Watcher) -> Result<Vec<Access>> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        if !renew_then_poll(fd, self.marked_at, || self.mark())? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let header = std::mem::size_of::<libc::inotify_event>();
        loop {
            let n = read_ready(fd, &mut buf)?;
            if n == 0 {
                break;
            }
            let own = w.shared.is_own_moment();
            let mut at = 0;
            while at + header <= n {
                // SAFETY: at least `header` bytes are there; read unaligned.
                let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name_len = ev.len as usize;
                let end = at + header + name_len;
                if end > n {
                    break;
                }
                let raw = &buf[at + header..end];
                at = end;
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                if own || name.is_empty() || ev.mask & libc::IN_ISDIR != 0 {
                    continue;
                }
                let Some(dir) = self.dirs.get(&ev.wd) else { continue };
                let real = dir.join(std::ffi::OsStr::from_bytes(name));
                let Some(host_path) = w.bait(&real).map(str::to_string) else { continue };
                out.push(opened(host_path, AccessSource::Inotify, None));
            }
        }
        Ok(out)
    }
}

/// Follows an audit log from where it was left (the offset is kept in the
/// state directory, so a restart misses nothing), across rotation.
struct AuditTail {
    path: PathBuf,
    offset_file: PathBuf,
    file: Option<(std::fs::File, u64, u64)>,
    parser: honeytrail_core::auditd::Parser,
    partial: Vec<u8>,
    quiet_since: Instant,
}

impl AuditTail {
    fn new(path: &Path, shared: &Shared) -> Result<AuditTail> {
        std::fs::metadata(path).with_context(|| {
            format!("cannot read the audit log {} (--audit-log; is auditd running?)", path.display())
        })?;
        let offset_file = shared.queue.dir().join("audit.offset");
        Ok(AuditTail {
            path: path.to_path_buf(),
            offset_file,
            file: None,
            parser: honeytrail_core::auditd::Parser::new(),
            partial: Vec::new(),
            quiet_since: Instant::now(),
        })
    }

    fn open(&mut self) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let mut f = std::fs::File::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))?;
        let meta = f.metadata()?;
        let saved: Option<(u64, u64)> = std::fs::read_to_string(&self.offset_file).ok().and_then(|t| {
            let (ino, off) = t.trim().split_once(' ')?;
            Some((ino.parse().ok()?, off.parse().ok()?))
        });
        let offset = match saved {
            Some((ino, off)) if ino == meta.ino() && off <= meta.len() => off,
            // Rotated since (another inode): the new file from its start.
            Some(_) => 0,
            // First start: from the end; what came before is not ours.
            None => meta.len(),
        };
        f.seek(SeekFrom::Start(offset))?;
        // Kept at once: a restart before the next line goes on from here.
        std::fs::write(&self.offset_file, format!("{} {offset}", meta.ino())).ok();
        self.file = Some((f, meta.ino(), offset));
        Ok(())
    }

    fn wait(&mut self, w: &Watcher) -> Result<Vec<Access>> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        if self.file.is_none() {
            self.open()?;
        }
        let mut chunk = vec![0u8; 256 * 1024];
        let mut read_any = false;
        if let Some((f, ino, offset)) = &mut self.file {
            let n = f.read(&mut chunk)?;
            if n > 0 {
                read_any = true;
                *offset += n as u64;
                self.partial.extend_from_slice(&chunk[..n]);
            } else if std::fs::metadata(&self.path).map(|m| m.ino() != *ino || m.len() < *offset).unwrap_or(false) {
                // Rotated or truncated: start on the new file.
                self.file = None;
                std::fs::write(&self.offset_file, "0 0").ok();
                return Ok(Vec::new());
            }
        }
        let mut events = Vec::new();
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            events.extend(self.parser.feed(&String::from_utf8_lossy(&line)));
        }
        if read_any {
            self.quiet_since = Instant::now();
            if let Some((_, ino, offset)) = &self.file {
                let kept = *offset - self.partial.len() as u64;
                std::fs::write(&self.offset_file, format!("{ino} {kept}")).ok();
            }
        } else {
            if self.quiet_since.elapsed() > Duration::from_secs(1) {
                events.extend(self.parser.flush());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let own = std::process::id();
        let mut out = Vec::new();
        for e in events {
            if e.pid == Some(own) {
                continue;
            }
            for mut a in e.accesses(None) {
                let real = host::under(&w.root, &a.path);
                let Some(host_path) = w.bait(&real).or_else(|| w.bait(Path::new(&a.path))) else { continue };
                a.path = host_path.to_string();
                a.host = None;
                a.by_owner = w.by_owner(&a.path, a.process.as_ref().and_then(|p| p.uid));
                if let Some(p) = &mut a.process {
                    p.user = p.user.take().or_else(|| p.uid.and_then(|u| w.names.name(&w.root, u)));
                    p.euser = p.euser.take().or_else(|| p.euid.and_then(|u| w.names.name(&w.root, u)));
                    p.login_user = p.login_user.take().or_else(|| p.loginuid.and_then(|u| w.names.name(&w.root, u)));
                }
                out.push(a);
            }
        }
        Ok(out)
    }
}

/// User names by uid, from the root's and the host's `/etc/passwd`,
/// read again at most once a minute.
#[derive(Default)]
struct Names {
    cache: Mutex<(HashMap<u32, String>, Option<Instant>)>,
}

impl Names {
    fn name(&self, root: &Path, uid: u32) -> Option<String> {
        let mut c = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = c.1.is_some_and(|t| t.elapsed() < Duration::from_secs(60));
        if !fresh || (!c.0.contains_key(&uid) && c.1.is_some_and(|t| t.elapsed() > Duration::from_secs(5))) {
            let mut map = HashMap::new();
            for r in [Path::new("/"), root] {
                for u in host::users(r).unwrap_or_default() {
                    map.insert(u.uid, u.name);
                }
            }
            *c = (map, Some(Instant::now()));
        }
        c.0.get(&uid).cloned()
    }
}

fn proc_file(pid: u32, name: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/{name}")).ok()?.take(64 * 1024).read_to_string(&mut text).ok()?;
    Some(text)
}

/// `Name`, `PPid`, and the real and effective `Uid` of /proc/PID/status.
fn status(pid: u32) -> Option<(String, u32, Option<u32>, Option<u32>)> {
    let text = proc_file(pid, "status")?;
    let mut name = String::new();
    let mut ppid = 0;
    let (mut uid, mut euid) = (None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Name:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("PPid:") {
            ppid = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Uid:") {
            let ids: Vec<u32> = v.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            uid = ids.first().copied();
            euid = ids.get(1).copied();
        }
    }
    Some((name, ppid, uid, euid))
}

fn id_file(pid: u32, name: &str) -> Option<u32> {
    proc_file(pid, name)?.trim().parse::<u32>().ok().filter(|&v| v != u32::MAX)
}

/// What /proc says of `pid` now, as fast as it can be read: the opener of
/// a bait file may be gone a moment later. Fields it could not read stay
/// empty.
fn snapshot(pid: u32, root: &Path, names: &Names) -> Process {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.to_string_lossy().into_owned());
    let cmdline = proc_file(pid, "cmdline")
        .map(|c| c.split('\0').filter(|a| !a.is_empty()).collect::<Vec<_>>().join(" "))
        .filter(|c| !c.is_empty());
    let own = status(pid);
    let loginuid = id_file(pid, "loginuid");
    let session = id_file(pid, "sessionid");
    let (unit, container) = proc_file(pid, "cgroup").map(|c| evidence::cgroup_context(&c)).unwrap_or_default();
    let mut parents = Vec::new();
    let mut next = own.as_ref().map(|s| s.1).unwrap_or(0);
    while next > 0 && parents.len() < evidence::MAX_PARENTS {
        let s = status(next);
        let exe = std::fs::read_link(format!("/proc/{next}/exe")).ok().map(|p| p.to_string_lossy().into_owned());
        parents.push(Ancestor { pid: next, name: s.as_ref().map(|s| s.0.clone()), exe });
        if next == 1 {
            break;
        }
        next = s.map(|s| s.1).unwrap_or(0);
    }
    let (name, uid, euid) = match own {
        Some((n, _, u, e)) => (Some(n).filter(|n| !n.is_empty()), u, e),
        None => (None, None, None),
    };
    Process {
        pid,
        exe,
        name,
        cmdline,
        uid,
        user: uid.and_then(|u| names.name(root, u)),
        euid,
        euser: euid.and_then(|u| names.name(root, u)),
        loginuid,
        login_user: loginuid.and_then(|u| names.name(root, u)),
        session,
        parents,
        unit,
        container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(dir: &Path) -> (Watcher, Vec<Watched>) {
        let real = dir.join("credentials");
        std::fs::write(&real, "[prod]\n").unwrap();
        let files = vec![Watched { host_path: "/home/x/.aws/credentials".into(), real, owner: None }];
        let shared = Arc::new(Shared::new(Queue::new(dir)));
        let w = Watcher {
            files: files.clone(),
            root: PathBuf::from("/"),
            shared,
            pending: Vec::new(),
            names: Names::default(),
        };
        (w, files)
    }

    #[test]
    fn the_audit_log_is_followed_from_its_end_across_a_restart_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (w, files) = watcher(dir.path());
        let bait = files[0].real.to_str().unwrap().to_string();
        let log = dir.path().join("audit.log");
        let event = |serial: u32, path: &str| {
            format!(
                "type=SYSCALL msg=audit(1764756131.1:{serial}): syscall=257 success=yes ppid=1 pid=4711 uid=1000 euid=1000 auid=1000 ses=3 comm=\"cat\" exe=\"/usr/bin/cat\" key=\"k\"\n\
                 type=PATH msg=audit(1764756131.1:{serial}): item=0 name=\"{path}\" nametype=NORMAL\ntype=EOE msg=audit(1764756131.1:{serial}): \n"
            )
        };
        std::fs::write(&log, event(1, &bait)).unwrap();
        let append = |text: String| {
            use std::io::Write;
            std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(text.as_bytes()).unwrap();
        };
        let mut first = AuditTail::new(&log, &w.shared).unwrap();
        assert!(first.wait(&w).unwrap().is_empty(), "what was there before the first start is not ours");
        // Stopped before anything new came: the next start goes on from the first one's end.
        drop(first);
        append(event(6, &bait));
        let mut tail = AuditTail::new(&log, &w.shared).unwrap();
        assert_eq!(tail.wait(&w).unwrap().len(), 1, "a read between two starts is not lost");
        append(event(2, &bait));
        append(event(3, "/etc/passwd"));
        let got = tail.wait(&w).unwrap();
        assert_eq!(got.len(), 1, "only the bait: {got:?}");
        assert_eq!(got[0].process.as_ref().unwrap().pid, 4711);
        assert_eq!(got[0].path, "/home/x/.aws/credentials");
        // A restart goes on from the kept offset: nothing twice, nothing missed.
        append(event(4, &bait));
        let mut again = AuditTail::new(&log, &w.shared).unwrap();
        assert_eq!(again.wait(&w).unwrap().len(), 1);
        // Rotated: the new file is read from its start.
        std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
        std::fs::write(&log, event(5, &bait)).unwrap();
        let mut found = Vec::new();
        for _ in 0..4 {
            found.extend(again.wait(&w).unwrap());
        }
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn inotify_reports_opens_of_the_bait_only_and_not_the_agents_own() {
        let dir = tempfile::tempdir().unwrap();
        let (w, files) = watcher(dir.path());
        let mut i = Inotify::new(&files).unwrap();
        std::fs::write(dir.path().join("config"), "x").unwrap();
        std::fs::read(dir.path().join("config")).unwrap();
        std::fs::read(&files[0].real).unwrap();
        let got = i.wait(&w).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].path.as_str(), got[0].source, got[0].process.is_none()),
            ("/home/x/.aws/credentials", AccessSource::Inotify, true)
        );
        w.shared.own(|| std::fs::read(&files[0].real).unwrap());
        assert!(i.wait(&w).unwrap().is_empty(), "the agent's own read");
    }

    #[test]
    fn a_snapshot_of_this_process_names_it_and_its_parents() {
        let names = Names::default();
        let p = snapshot(std::process::id(), Path::new("/"), &names);
        assert!(p.exe.is_some() && p.uid.is_some(), "{p:?}");
        assert!(!p.parents.is_empty());
        assert!(p.parents.len() <= evidence::MAX_PARENTS);
        let gone = snapshot(u32::MAX - 1, Path::new("/"), &names);
        assert_eq!((gone.exe, gone.uid, gone.parents.len()), (None, None, 0));
    }
}
