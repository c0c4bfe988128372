//! Linux audit logs (`/var/log/audit/audit.log`, raw or enriched format)
//! into file-access evidence, and the watch rules that make auditd record
//! reads of bait files.
//!
//! One event is several records sharing a serial (`msg=audit(TIME:SERIAL)`):
//! SYSCALL (who), CWD, PATH (which files), PROCTITLE and EXECVE (the command
//! line), ended by EOE. Records of different events interleave. Strings the
//! kernel considers untrusted (paths, names, the command line) are written
//! in hex when they hold spaces, quotes or control characters; they are
//! decoded here. Every value is attacker-influenced text: nothing here
//! trusts a length, an order or an encoding.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::evidence::{Access, AccessSource, Ancestor, Process, MAX_TEXT};

/// The key the generated rules tag records with, unless told otherwise.
pub const DEFAULT_KEY: &str = "honeytrail";
/// Events still open (no EOE seen) kept at most; the oldest are finished
/// early beyond it, so a log without EOE records cannot grow memory.
const MAX_OPEN_EVENTS: usize = 512;
/// Longest line considered; longer ones are cut (a hostile command line).
const MAX_LINE: usize = 64 * 1024;

/// `auditctl` rules watching `paths` for reads, tagged with `key`: one `-w`
/// rule per path, ready for `/etc/audit/rules.d/`. Paths with characters
/// auditctl cannot take in a rule (whitespace, control characters) are
/// refused rather than written as a rule that watches something else.
pub fn rules(paths: &[String], key: &str) -> Result<String, crate::Invalid> {
    if key.is_empty() || key.len() > 31 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(crate::Invalid(format!(
            "audit key {key:?}: use 1 to 31 letters, digits, '-' or '_' (auditctl's key limit)"
        )));
    }
    let mut out = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in paths {
        if !p.starts_with('/') {
            return Err(crate::Invalid(format!("{p:?} is not an absolute path; auditctl watches absolute paths only")));
        }
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) || p.len() > 4095 {
            return Err(crate::Invalid(format!(
                "{:?} holds whitespace or control characters, which an auditctl rule cannot name",
                crate::encoding::printable(p)
            )));
        }
        if seen.insert(p.clone()) {
            out.push_str(&format!("-w {p} -p r -k {key}\n"));
        }
    }
    Ok(out)
}

/// One audit event, its records joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    pub node: Option<String>,
    pub serial: u64,
    pub time: DateTime<Utc>,
    pub syscall: bool,
    pub success: Option<bool>,
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub auid: Option<u32>,
    pub ses: Option<u32>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    pub key: Option<String>,
    pub cwd: Option<String>,
    /// PATH records' names (not the PARENT items), made absolute with CWD.
    pub paths: Vec<String>,
    pub proctitle: Option<String>,
    pub argv: Vec<String>,
    /// Names the enriched format gives (`UID="deploy"`).
    pub names: BTreeMap<String, String>,
}

impl AuditEvent {
    /// The command line: EXECVE's arguments, else PROCTITLE.
    pub fn cmdline(&self) -> Option<String> {
        if !self.argv.is_empty() {
            return Some(self.argv.join(" "));
        }
        self.proctitle.clone()
    }

    /// The access evidence this event is, one per path it names.
    pub fn accesses(&self, host: Option<&str>) -> Vec<Access> {
        if !self.syscall {
            return Vec::new();
        }
        let host = host.map(str::to_string).or_else(|| self.node.clone());
        let process = Process {
            pid: self.pid.unwrap_or(0),
            exe: self.exe.clone(),
            name: self.comm.clone(),
            cmdline: self.cmdline(),
            uid: self.uid,
            user: self.names.get("UID").cloned(),
            euid: self.euid,
            euser: self.names.get("EUID").cloned(),
            loginuid: self.auid,
            login_user: self.names.get("AUID").cloned(),
            session: self.ses,
            parents: self.ppid.map(|pid| vec![Ancestor { pid, name: None, exe: None }]).unwrap_or_default(),
            unit: None,
            container: None,
        };
        self.paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                Access {
                    id: format!(
                        "audit:{}:{}:{}:{i}",
                        self.node.as_deref().unwrap_or(""),
                        self.time.timestamp_millis(),
                        self.serial
                    ),
                    at: self.time,
                    last_at: self.time,
                    count: 1,
                    path: path.clone(),
                    host: host.clone(),
                    source: AccessSource::Auditd,
                    process: Some(process.clone()),
                    by_owner: false,
                }
                .bounded()
            })
            .collect()
    }
}

/// Joins records into events as lines arrive, in any interleaving.
#[derive(Debug, Default)]
pub struct Parser {
    open: BTreeMap<(Option<String>, u64), AuditEvent>,
    /// Lines that were not audit records.
    pub skipped: u64,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Takes one line; returns the events it finished.
    pub fn feed(&mut self, line: &str) -> Vec<AuditEvent> {
        let line = cut(line.trim_end_matches(['\n', '\r']), MAX_LINE);
        let Some(record) = Record::parse(line) else {
            if !line.trim().is_empty() {
                self.skipped += 1;
            }
            return Vec::new();
        };
        let key = (record.node.clone(), record.serial);
        let mut done = Vec::new();
        if record.kind == "EOE" {
            if let Some(e) = self.open.remove(&key) {
                done.push(finish(e));
            }
            return done;
        }
        let event = self.open.entry(key).or_insert_with(|| AuditEvent {
            node: record.node.clone(),
            serial: record.serial,
            time: record.time,
            ..AuditEvent::default()
        });
        record.apply(event);
        while self.open.len() > MAX_OPEN_EVENTS {
            // The oldest by serial: its EOE is not coming.
            let oldest = self.open.keys().min_by_key(|(_, s)| *s).cloned();
            if let Some(k) = oldest {
                if let Some(e) = self.open.remove(&k) {
                    done.push(finish(e));
                }
            }
        }
        done
    }

    /// Every event still open (the end of the input, or a pause in a
    /// followed log).
    pub fn flush(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.open).into_values().map(finish).collect()
    }
}

/// Makes relative PATH names absolute with the event's CWD.
fn finish(mut e: AuditEvent) -> AuditEvent {
    if let Some(cwd) = &e.cwd {
        for p in &mut e.paths {
            if !p.starts_with('/') {
                let joined = format!("{}/{}", cwd.trim_end_matches('/'), p.trim_start_matches("./"));
                *p = joined;
            }
        }
    }
    e.paths.retain(|p| p.starts_with('/'));
    e.paths.dedup();
    e
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Record<'a> {
    node: Option<String>,
    kind: &'a str,
    time: DateTime<Utc>,
    serial: u64,
    fields: Vec<(&'a str, &'a str)>,
    enriched: Vec<(&'a str, &'a str)>,
}

impl<'a> Record<'a> {
    fn parse(line: &'a str) -> Option<Record<'a>> {
        let (raw, enriched) = match line.split_once('\u{1d}') {
            Some((r, e)) => (r, e),
            None => (line, ""),
        };
        let mut rest = raw.trim_start();
        let mut node = None;
        if let Some(after) = rest.strip_prefix("node=") {
            let (n, r) = after.split_once(' ')?;
            node = Some(decode(n));
            rest = r.trim_start();
        }
        let after = rest.strip_prefix("type=")?;
        let (kind, r) = after.split_once(' ')?;
        let r = r.trim_start().strip_prefix("msg=audit(")?;
        let (stamp, r) = r.split_once("):")?;
        let (time, serial) = stamp.split_once(':')?;
        let (secs, millis) = time.split_once('.').unwrap_or((time, "0"));
        let secs: i64 = secs.parse().ok()?;
        let digits = millis.get(..3.min(millis.len()))?;
        let millis: u32 = digits.parse::<u32>().ok()? * 10u32.pow(3 - digits.len() as u32);
        let time = Utc.timestamp_opt(secs, millis.checked_mul(1_000_000)?).single()?;
        let serial: u64 = serial.parse().ok()?;
        // Userspace records (USER_*) carry msg='…' with fields inside: not file access.
        Some(Record { node, kind, time, serial, fields: fields(r), enriched: fields(enriched) })
    }

    fn apply(&self, e: &mut AuditEvent) {
        let get = |name: &str| self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let num = |name: &str| get(name).and_then(|v| v.parse::<u32>().ok()).filter(|&v| v != u32::MAX);
        match self.kind {
            "SYSCALL" => {
                e.syscall = true;
                e.success = get("success").map(|v| v == "yes");
                e.pid = num("pid");
                e.ppid = num("ppid");
                e.uid = num("uid");
                e.euid = num("euid");
                e.auid = num("auid");
                e.ses = num("ses");
                e.comm = get("comm").map(decode).filter(|v| v != "(null)");
                e.exe = get("exe").map(decode).filter(|v| v != "(null)");
                e.key = get("key").map(decode).filter(|v| v != "(null)");
                for (k, v) in &self.enriched {
                    e.names.insert((*k).to_string(), unquote(v).to_string());
                }
            }
            "CWD" => e.cwd = get("cwd").map(decode),
            "PATH" => {
                if get("nametype") == Some("PARENT") {
                    return;
                }
                if let Some(name) = get("name").map(decode).filter(|v| v != "(null)" && !v.is_empty()) {
                    e.paths.push(name);
                }
            }
            "PROCTITLE" => {
                e.proctitle = get("proctitle").map(|v| {
                    let decoded = decode(v);
                    decoded.split('\0').filter(|a| !a.is_empty()).collect::<Vec<_>>().join(" ")
                })
            }
            "EXECVE" => {
                let argc = get("argc").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0).min(4096);
                let mut argv = Vec::new();
                let mut len = 0;
                for i in 0..argc {
                    let Some(a) = get(&format!("a{i}")) else { break };
                    let a = decode(a);
                    len += a.len() + 1;
                    if len > MAX_TEXT * 4 {
                        break;
                    }
                    argv.push(a);
                }
                e.argv = argv;
            }
            _ => {}
        }
    }
}

/// `key=value` pairs; values are `"quoted"`, `'quoted'` or bare words.
fn fields(mut s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return out;
        }
        let Some(eq) = s.find('=') else { return out };
        let key = &s[..eq];
        if key.contains(' ') {
            // A stray word: skip to the next space.
            let next = s.find(' ').map_or("", |i| &s[i..]);
            s = next;
            continue;
        }
        let rest = &s[eq + 1..];
        let (value, after) = match rest.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => match rest[1..].find(q as char) {
                Some(end) => (&rest[..end + 2], &rest[end + 2..]),
                None => (rest, ""),
            },
            _ => match rest.find(' ') {
                Some(end) => (&rest[..end], &rest[end..]),
                None => (rest, ""),
            },
        };
        out.push((key, value));
        s = after;
    }
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// A value as auditd wrote it: quoted text as is, bare hex decoded (bytes
/// that are not UTF-8 become U+FFFD), anything else as is.
fn decode(v: &str) -> String {
    let uq = unquote(v);
    if uq.len() != v.len() {
        return uq.to_string();
    }
    if v.len() >= 2 && v.len().is_multiple_of(2) && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Vec<u8> =
            (0..v.len()).step_by(2).filter_map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok()).collect();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02X}")).collect()
    }

    #[test]
    fn records_of_one_event_are_joined_by_serial_even_interleaved() {
        let cat_title = hex("cat\0/home/deploy/.aws/credentials");
        let log = format!(
            "type=SYSCALL msg=audit(1764756131.120:4567): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=4700 pid=4711 auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=pts0 ses=7 comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=\"honeytrail\"\u{1d}ARCH=x86_64 SYSCALL=openat AUID=\"deploy\" UID=\"deploy\" GID=\"deploy\" EUID=\"deploy\"\n\
             type=SYSCALL msg=audit(1764756131.121:4568): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=99 auid=4294967295 uid=0 euid=0 ses=4294967295 comm=\"cron\" exe=\"/usr/sbin/cron\" key=(null)\n\
             type=CWD msg=audit(1764756131.120:4567): cwd=\"/home/deploy\"\n\
             type=PATH msg=audit(1764756131.120:4567): item=0 name=\".aws/credentials\" inode=1234 dev=08:01 mode=0100600 ouid=1001 ogid=1001 rdev=00:00 nametype=NORMAL cap_fp=0\n\
             type=PROCTITLE msg=audit(1764756131.120:4567): proctitle={cat_title}\n\
             type=EOE msg=audit(1764756131.121:4568): \n\
             type=EOE msg=audit(1764756131.120:4567): \n"
        );
        let mut p = Parser::new();
        let events: Vec<AuditEvent> = log.lines().flat_map(|l| p.feed(l)).collect();
        assert_eq!(events.len(), 2);
        let cat = events.iter().find(|e| e.serial == 4567).unwrap();
        assert_eq!(cat.paths, vec!["/home/deploy/.aws/credentials".to_string()]);
        assert_eq!(cat.cmdline().as_deref(), Some("cat /home/deploy/.aws/credentials"));
        assert_eq!(
            (cat.pid, cat.ppid, cat.uid, cat.auid, cat.ses),
            (Some(4711), Some(4700), Some(1001), Some(1001), Some(7))
        );
        assert_eq!(cat.key.as_deref(), Some("honeytrail"));
        let cron = events.iter().find(|e| e.serial == 4568).unwrap();
        assert_eq!((cron.auid, cron.ses, cron.key.as_deref()), (None, None, None));
        let access = &cat.accesses(Some("db-3"))[0];
        assert_eq!(access.host.as_deref(), Some("db-3"));
        let proc_ = access.process.as_ref().unwrap();
        assert_eq!((proc_.user.as_deref(), proc_.login_user.as_deref()), (Some("deploy"), Some("deploy")));
        assert_eq!(access.at.timestamp_millis(), 1_764_756_131_120);
        assert!(
            access.sentence("db-3").starts_with("read by /usr/bin/cat, pid 4711, user deploy"),
            "{}",
            access.sentence("db-3")
        );
    }

    #[test]
    fn hex_encoded_paths_names_and_arguments_are_decoded() {
        let path = "/srv/my app/.env";
        let log = format!(
            "node=web-1 type=SYSCALL msg=audit(1764756131.5:9): syscall=2 success=no exit=-13 ppid=2 pid=3 uid=1002 euid=1002 auid=1002 ses=2 comm={} exe={} key=\"honeytrail\"\n\
             node=web-1 type=EXECVE msg=audit(1764756131.5:9): argc=3 a0=\"grep\" a1=\"-r\" a2={}\n\
             node=web-1 type=PATH msg=audit(1764756131.5:9): item=0 name=\"/srv/my app/\" nametype=PARENT\n\
             node=web-1 type=PATH msg=audit(1764756131.5:9): item=1 name={} nametype=NORMAL\n",
            hex("my grep"),
            hex("/tmp/x y/grep"),
            hex("AKIA key"),
            hex(path)
        );
        let mut p = Parser::new();
        let mut events: Vec<AuditEvent> = log.lines().flat_map(|l| p.feed(l)).collect();
        assert!(events.is_empty(), "no EOE yet");
        events.extend(p.flush());
        let e = &events[0];
        assert_eq!(e.node.as_deref(), Some("web-1"));
        assert_eq!(e.paths, vec![path.to_string()]);
        assert_eq!(e.comm.as_deref(), Some("my grep"));
        assert_eq!(e.exe.as_deref(), Some("/tmp/x y/grep"));
        assert_eq!(e.cmdline().as_deref(), Some("grep -r AKIA key"));
        assert_eq!(e.success, Some(false));
        assert_eq!(e.accesses(None)[0].host.as_deref(), Some("web-1"));
    }

    #[test]
    fn garbage_and_hostile_lines_never_panic_or_grow_without_bound() {
        let mut p = Parser::new();
        for line in [
            "",
            "type=",
            "type=SYSCALL msg=audit(",
            "type=SYSCALL msg=audit(abc:def): pid=1",
            "type=SYSCALL msg=audit(1.999999999999:1): pid=1",
            "type=PATH msg=audit(1.0:2): name=\"unterminated",
            "type=PATH msg=audit(1.0:2): name=ZZ nametype=NORMAL",
            "type=EXECVE msg=audit(1.0:3): argc=99999999999 a0=41",
            "node= type=X msg=audit(1.0:4): =",
            "\u{1d}\u{1d}",
        ] {
            p.feed(line);
        }
        for i in 0..5_000u64 {
            let _ = p.feed(&format!("type=SYSCALL msg=audit(1.0:{}): pid=1 syscall=2", 10 + i));
        }
        assert!(p.open.len() <= MAX_OPEN_EVENTS);
        let huge = format!("type=PROCTITLE msg=audit(1.0:7): proctitle={}", "41".repeat(200_000));
        p.feed(&huge);
        assert!(p.flush().iter().all(|e| e.proctitle.as_ref().is_none_or(|t| t.len() <= MAX_LINE)));
    }

    #[test]
    fn rules_watch_every_path_for_reads_once() {
        let paths = vec!["/home/a/.aws/credentials".to_string(), "/opt/app/.env".into(), "/opt/app/.env".into()];
        assert_eq!(
            rules(&paths, DEFAULT_KEY).unwrap(),
            "-w /home/a/.aws/credentials -p r -k honeytrail\n-w /opt/app/.env -p r -k honeytrail\n"
        );
        assert!(rules(&["/a b".into()], "k").unwrap_err().0.contains("whitespace"));
        assert!(rules(&["rel/path".into()], "k").is_err());
        assert!(rules(&paths, "bad key").is_err());
    }
}
