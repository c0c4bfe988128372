//! Host file-access evidence (phase 4): who opened a bait file, on which
//! host, when. Hosts' agents (fanotify, or inotify without process details)
//! and audit logs (`auditd`) produce the same [`Access`] records; the server
//! ties them to the placement whose host and path they match.
//!
//! Every text here (executable paths, command lines, unit names) was written
//! by whoever ran the process, possibly the intruder: sentences made from it
//! pass through [`printable`], and lengths are bounded on the way in
//! ([`Access::bounded`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::encoding::printable;

/// How long a burst of opens of one file by one process may last and still
/// be one record (with a count).
pub const BURST_SECONDS: i64 = 2;
/// At most this many ancestors in a parent chain.
pub const MAX_PARENTS: usize = 32;
/// Longest kept text field (a command line, a path).
pub const MAX_TEXT: usize = 1024;
/// Longest kept record ID.
pub const MAX_ID: usize = 128;

/// Where an access record was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessSource {
    /// The agent's fanotify watch: the opening process is known.
    Fanotify,
    /// The agent's inotify fallback: only that the file was opened.
    Inotify,
    /// An audit log (`honeytrail ingest auditd`, or the agent with `--source auditd`).
    Auditd,
}

impl AccessSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessSource::Fanotify => "fanotify",
            AccessSource::Inotify => "inotify",
            AccessSource::Auditd => "auditd",
        }
    }

    pub fn parse(raw: &str) -> Option<AccessSource> {
        match raw {
            "fanotify" => Some(AccessSource::Fanotify),
            "inotify" => Some(AccessSource::Inotify),
            "auditd" => Some(AccessSource::Auditd),
            _ => None,
        }
    }
}

/// One process in a parent chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ancestor {
    pub pid: u32,
    /// Its short name (`comm`), e.g. `bash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
}

/// The process that opened the file, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Process {
    pub pid: u32,
    /// The executable (`/proc/PID/exe`, audit's `exe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Its short name (`comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The command line, arguments separated by spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euser: Option<String>,
    /// The login uid (who logged in, whatever they became since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// The audit session ID of the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// Parent, grandparent, … up to PID 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Ancestor>,
    /// The systemd unit (service or scope) it runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The container (`docker:<id>`) or Kubernetes pod (`pod:<uid>`) it runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// One access (or a burst of them by one process) to one bait file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Access {
    /// Unique where it was made (the agent's random ID, the audit event's
    /// node, time and serial): delivering a record twice files it once.
    pub id: String,
    /// The first open.
    pub at: DateTime<Utc>,
    /// The last open of the burst.
    pub last_at: DateTime<Utc>,
    /// How many opens the record stands for.
    pub count: u32,
    /// The file's path on its host.
    pub path: String,
    /// The host, when the record does not come from an enrolled agent
    /// (an audit log's `node=`, or `--host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub source: AccessSource,
    /// `None`: no process information (the inotify fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The opener is the user whose own file the bait was merged into (a
    /// real `~/.aws/credentials`): their tools read it all the time, so such
    /// a read is kept but never alerts by itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_owner: bool,
}

fn bound(s: &mut String) {
    cut(s, MAX_TEXT);
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

fn bound_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        bound(v);
    }
}

impl Access {
    /// The record with every text cut to [`MAX_TEXT`] bytes, at most
    /// [`MAX_PARENTS`] ancestors and a count of at least one: what the
    /// server keeps of whatever a host sent.
    pub fn bounded(mut self) -> Access {
        cut(&mut self.id, MAX_ID);
        bound(&mut self.path);
        bound_opt(&mut self.host);
        self.count = self.count.max(1);
        if self.last_at < self.at {
            self.last_at = self.at;
        }
        if let Some(p) = &mut self.process {
            for f in [&mut p.exe, &mut p.name, &mut p.cmdline, &mut p.user, &mut p.euser, &mut p.login_user] {
                bound_opt(f);
            }
            bound_opt(&mut p.unit);
            bound_opt(&mut p.container);
            p.parents.truncate(MAX_PARENTS);
            for a in &mut p.parents {
                bound_opt(&mut a.name);
                bound_opt(&mut a.exe);
            }
        }
        self
    }

    /// Whether `other` is the same process opening the same file again
    /// within [`BURST_SECONDS`] of this record's last open.
    pub fn continues(&self, other: &Access) -> bool {
        self.path == other.path
            && self.host == other.host
            && self.process.as_ref().map(|p| p.pid) == other.process.as_ref().map(|p| p.pid)
            && other.at >= self.at
            && (other.at - self.last_at).num_seconds() <= BURST_SECONDS
    }

    /// Folds `other` (a later open, see [`continues`](Self::continues)) into this record.
    pub fn absorb(&mut self, other: &Access) {
        self.count = self.count.saturating_add(other.count.max(1));
        if other.last_at > self.last_at {
            self.last_at = other.last_at;
        }
    }

    /// The executable, else the process name, else `None`.
    pub fn program(&self) -> Option<&str> {
        let p = self.process.as_ref()?;
        p.exe.as_deref().or(p.name.as_deref())
    }

    /// The sentence responders read: "read by /usr/bin/cat, pid 4711, user
    /// deploy, via sshd ← bash, on db-3 at 2026-12-03 10:02:11 UTC".
    pub fn sentence(&self, host: &str) -> String {
        let mut out = String::from("read");
        match &self.process {
            None => out.push_str(" (no process information)"),
            Some(p) => {
                match self.program() {
                    Some(prog) => out.push_str(&format!(" by {}, pid {}", printable(prog), p.pid)),
                    None => out.push_str(&format!(" by pid {}", p.pid)),
                }
                match (&p.user, p.uid) {
                    (Some(user), _) => out.push_str(&format!(", user {}", printable(user))),
                    (None, Some(uid)) => out.push_str(&format!(", uid {uid}")),
                    (None, None) => {}
                }
                if p.euid.is_some() && p.euid != p.uid {
                    if let Some(e) = describe_user(p.euser.as_deref(), p.euid) {
                        out.push_str(&format!(" as {e}"));
                    }
                }
                if p.loginuid.is_some() && p.loginuid != p.uid {
                    if let Some(l) = describe_user(p.login_user.as_deref(), p.loginuid) {
                        out.push_str(&format!(" (logged in as {l})"));
                    }
                }
                let chain = p.chain();
                if !chain.is_empty() {
                    out.push_str(&format!(", via {chain}"));
                }
                if let Some(c) = &p.container {
                    out.push_str(&format!(", in {}", printable(c)));
                } else if let Some(u) = &p.unit {
                    out.push_str(&format!(", in {}", printable(u)));
                }
            }
        }
        if self.count > 1 {
            out.push_str(&format!(", {} times", self.count));
        }
        out.push_str(&format!(" on {} at {}", printable(host), self.at.format("%Y-%m-%d %H:%M:%S UTC")));
        if self.by_owner {
            out.push_str(" (by the file's owner: the bait shares their own credentials file)");
        }
        out
    }
}

impl Process {
    /// The parent chain as people write it, nearest last: `sshd ← bash`
    /// (PID 1 left out; at most the nearest [`CHAIN_SHOWN`], after `… ←`).
    pub fn chain(&self) -> String {
        let names: Vec<String> = self
            .parents
            .iter()
            .filter(|a| a.pid > 1)
            .take(CHAIN_SHOWN + 1)
            .map(|a| {
                let name = a
                    .name
                    .clone()
                    .or_else(|| a.exe.as_deref().map(|e| e.rsplit('/').next().unwrap_or(e).to_string()))
                    .unwrap_or_else(|| format!("pid {}", a.pid));
                printable(&name).into_owned()
            })
            .collect();
        let cut = names.len() > CHAIN_SHOWN;
        let mut shown: Vec<String> = names.into_iter().take(CHAIN_SHOWN).rev().collect();
        if cut {
            shown.insert(0, "…".into());
        }
        shown.join(" ← ")
    }
}

/// Ancestors a sentence names at most.
pub const CHAIN_SHOWN: usize = 4;

fn describe_user(name: Option<&str>, id: Option<u32>) -> Option<String> {
    match (name, id) {
        (Some(n), _) => Some(printable(n).into_owned()),
        (None, Some(id)) => Some(format!("uid {id}")),
        (None, None) => None,
    }
}

/// "14 minutes before the first call" (or "after", for reads after it).
pub fn lead_time(read: DateTime<Utc>, first_call: DateTime<Utc>) -> String {
    let seconds = (first_call - read).num_seconds();
    let (n, unit) = match seconds.unsigned_abs() {
        s if s < 120 => (s, "seconds"),
        s if s < 7200 => (s / 60, "minutes"),
        s if s < 172_800 => (s / 3600, "hours"),
        s => (s / 86_400, "days"),
    };
    let unit = if n == 1 { unit.trim_end_matches('s') } else { unit };
    if seconds >= 0 {
        format!("{n} {unit} before the first call")
    } else {
        format!("{n} {unit} after the first call")
    }
}

/// The systemd unit and the container or pod of a process, from the text
/// of `/proc/PID/cgroup` (v1 or v2).
pub fn cgroup_context(text: &str) -> (Option<String>, Option<String>) {
    let mut unit = None;
    let mut container = None;
    for line in text.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else { continue };
        for part in path.split('/') {
            if container.is_none() {
                container = container_of(part);
            }
            if part.ends_with(".service") || (part.ends_with(".scope") && container_of(part).is_none()) {
                unit = Some(part.to_string());
            }
        }
        if let Some(pod) = path.split('/').find_map(pod_of) {
            container = Some(pod);
        }
    }
    (unit, container)
}

fn is_hex_id(s: &str) -> bool {
    s.len() >= 12 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, or
/// a bare 64-hex directory under `/docker/`.
fn container_of(part: &str) -> Option<String> {
    let name = part.strip_suffix(".scope").unwrap_or(part);
    for (prefix, runtime) in
        [("docker-", "docker"), ("cri-containerd-", "containerd"), ("crio-", "cri-o"), ("libpod-", "podman")]
    {
        if let Some(id) = name.strip_prefix(prefix) {
            if is_hex_id(id) {
                return Some(format!("{runtime}:{}", &id[..12]));
            }
        }
    }
    (name.len() == 64 && is_hex_id(name)).then(|| format!("container:{}", &name[..12]))
}

/// `pod<uid>` or `kubepods-burstable-pod<uid>.slice`.
fn pod_of(part: &str) -> Option<String> {
    let name = part.strip_suffix(".slice").unwrap_or(part);
    let at = name.rfind("pod")?;
    let uid = name[at + 3..].replace('_', "-");
    let valid = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    (valid && (at == 0 || name[..at].ends_with('-'))).then(|| format!("pod:{uid}"))
}

/// What became of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Touch {
    /// Within `evidence.touch_window`: a key use may still follow.
    Pending,
    /// The key was used within the window: the read is on that incident.
    Used,
    /// No use followed: a bait-touched incident was opened.
    Touched,
    /// A process on `evidence.quiet_programs`: kept, never alerted.
    Quiet,
    /// No placement has this host and path.
    Unmatched,
}

impl Touch {
    pub fn as_str(self) -> &'static str {
        match self {
            Touch::Pending => "pending",
            Touch::Used => "used",
            Touch::Touched => "touched",
            Touch::Quiet => "quiet",
            Touch::Unmatched => "unmatched",
        }
    }

    /// The state as stored; anything unknown reads as pending.
    pub fn parse(raw: &str) -> Touch {
        match raw {
            "used" => Touch::Used,
            "touched" => Touch::Touched,
            "quiet" => Touch::Quiet,
            "unmatched" => Touch::Unmatched,
            _ => Touch::Pending,
        }
    }
}

/// A read of bait as filed: the record, its host, what it matched and what
/// became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FiledRead {
    pub id: i64,
    pub host: String,
    pub agent_id: Option<i64>,
    pub token_id: Option<i64>,
    pub access_key_id: Option<String>,
    pub placement_id: Option<i64>,
    pub touch: Touch,
    pub received_at: DateTime<Utc>,
    /// The record as observed.
    pub access: Access,
    /// The sentence responders read ("read by /usr/bin/cat, pid 4711, …").
    pub sentence: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn read() -> Access {
        Access {
            id: "a1".into(),
            at: at("2026-12-03T10:02:11Z"),
            last_at: at("2026-12-03T10:02:11Z"),
            count: 1,
            path: "/home/deploy/.aws/credentials".into(),
            host: None,
            source: AccessSource::Fanotify,
            process: Some(Process {
                pid: 4711,
                exe: Some("/usr/bin/cat".into()),
                name: Some("cat".into()),
                cmdline: Some("cat /home/deploy/.aws/credentials".into()),
                uid: Some(1001),
                user: Some("deploy".into()),
                euid: Some(1001),
                euser: Some("deploy".into()),
                loginuid: Some(1001),
                login_user: Some("deploy".into()),
                session: Some(7),
                parents: vec![
                    Ancestor { pid: 4700, name: Some("bash".into()), exe: None },
                    Ancestor { pid: 4690, name: Some("sshd".into()), exe: None },
                    Ancestor { pid: 1, name: Some("systemd".into()), exe: None },
                ],
                unit: Some("session-7.scope".into()),
                container: None,
            }),
            by_owner: false,
        }
    }

    #[test]
    fn the_sentence_names_program_user_chain_host_and_time() {
        assert_eq!(
            read().sentence("db-3"),
            "read by /usr/bin/cat, pid 4711, user deploy, via sshd ← bash, in session-7.scope on db-3 at 2026-12-03 10:02:11 UTC"
        );
        let mut r = read();
        r.process = None;
        r.count = 3;
        assert_eq!(r.sentence("db-3"), "read (no process information), 3 times on db-3 at 2026-12-03 10:02:11 UTC");
    }

    #[test]
    fn hostile_text_is_made_printable_and_bounded() {
        let mut r = read();
        let p = r.process.as_mut().unwrap();
        p.exe = Some("/tmp/\u{1b}[31mevil\u{202e}".into());
        p.cmdline = Some("x".repeat(10_000));
        p.parents = (0..100).map(|i| Ancestor { pid: i + 2, name: Some(format!("\r\nsh{i}")), exe: None }).collect();
        let r = r.bounded();
        assert_eq!(
            r.process.as_ref().unwrap().chain(),
            "… ← \\u{d}\\u{a}sh3 ← \\u{d}\\u{a}sh2 ← \\u{d}\\u{a}sh1 ← \\u{d}\\u{a}sh0"
        );
        let s = r.sentence("h\u{7}ost");
        assert!(!s.chars().any(|c| c.is_control() || c == '\u{202e}'), "{s:?}");
        assert!(s.contains("\\u{1b}") && s.contains("h\\u{7}ost"), "{s}");
        let p = r.process.unwrap();
        assert_eq!((p.cmdline.unwrap().len(), p.parents.len()), (MAX_TEXT, MAX_PARENTS));
    }

    #[test]
    fn a_multibyte_record_id_is_cut_on_a_character_boundary() {
        let mut r = read();
        r.id = "é".repeat(100); // two bytes each
        r.id.insert(0, 'x'); // byte 128 now falls inside an 'é'
        let r = r.bounded();
        assert!(r.id.len() <= MAX_ID && r.id.starts_with('x'), "{}", r.id);
    }

    #[test]
    fn bursts_fold_into_one_record() {
        let first = read();
        let mut again = read();
        again.at = at("2026-12-03T10:02:12Z");
        again.last_at = again.at;
        assert!(first.continues(&again));
        let mut merged = first.clone();
        merged.absorb(&again);
        assert_eq!((merged.count, merged.last_at), (2, again.at));
        let mut later = read();
        later.at = at("2026-12-03T10:02:20Z");
        assert!(!merged.continues(&later));
        let mut other = again.clone();
        other.process.as_mut().unwrap().pid = 1;
        assert!(!first.continues(&other));
    }

    #[test]
    fn lead_times_read_naturally() {
        let call = at("2026-12-03T10:16:11Z");
        assert_eq!(lead_time(at("2026-12-03T10:02:11Z"), call), "14 minutes before the first call");
        assert_eq!(lead_time(at("2026-12-03T10:16:10Z"), call), "1 second before the first call");
        assert_eq!(lead_time(at("2026-12-01T10:16:11Z"), call), "2 days before the first call");
        assert_eq!(lead_time(at("2026-12-03T10:20:11Z"), call), "4 minutes after the first call");
    }

    #[test]
    fn cgroups_name_units_containers_and_pods() {
        assert_eq!(cgroup_context("0::/system.slice/ssh.service\n"), (Some("ssh.service".into()), None));
        assert_eq!(
            cgroup_context("0::/user.slice/user-1000.slice/session-3.scope\n"),
            (Some("session-3.scope".into()), None)
        );
        let docker = format!("0::/system.slice/docker-{}.scope\n", "ab12".repeat(16));
        assert_eq!(cgroup_context(&docker), (None, Some("docker:ab12ab12ab12".into())));
        let v1 = format!("12:pids:/docker/{}\n", "cd34".repeat(16));
        assert_eq!(cgroup_context(&v1).1, Some("container:cd34cd34cd34".into()));
        let pod = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-{}.scope",
            "ef56".repeat(16)
        );
        assert_eq!(cgroup_context(&pod).1, Some("pod:1b2c3d4e-0000-1111-2222-333344445555".into()));
        assert_eq!(cgroup_context("garbage"), (None, None));
    }
}
