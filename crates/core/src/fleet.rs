//! The fleet protocol: what an enrolling host and its agent send the server
//! and what they get back. Shared by the server and the agent so the two
//! cannot drift apart.
//!
//! Everything a host sends is written by whoever holds an enrolment secret
//! or an agent credential, which may be an intruder: [`HostFacts::check`]
//! and [`PlacedFile::check`] bound every field before it is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::template::PlacementTemplate;
use crate::Invalid;
use crate::Labels;

/// The longest host fact kept.
pub const MAX_FACT: usize = 256;
/// The most bait files one host reports.
pub const MAX_FILES: usize = 256;

/// What a host says about itself when it enrols.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostFacts {
    pub hostname: String,
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// The DMI product serial, where readable.
    pub dmi_serial: Option<String>,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: Option<String>,
    /// The cloud instance ID, where cloud-init's instance data shows it.
    pub instance_id: Option<String>,
    pub agent_version: Option<String>,
}

pub(crate) fn fact(name: &str, value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_FACT || crate::encoding::has_hidden(value) {
        return Err(Invalid(format!(
            "{name}: at most {MAX_FACT} characters, no control, zero-width or bidirectional characters"
        )));
    }
    Ok(())
}

impl HostFacts {
    /// Bounds every field: a host name is required, nothing is long or
    /// holds control characters.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.hostname.trim().is_empty() {
            return Err(Invalid("hostname: the host must say its name".into()));
        }
        fact("hostname", &self.hostname)?;
        for (name, v) in [
            ("machine_id", &self.machine_id),
            ("dmi_serial", &self.dmi_serial),
            ("os", &self.os),
            ("instance_id", &self.instance_id),
            ("agent_version", &self.agent_version),
        ] {
            if let Some(v) = v {
                fact(name, v)?;
            }
        }
        Ok(())
    }
}

/// A host asking for its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub secret: String,
    pub host: HostFacts,
    /// The EC2 instance identity document and its signature, for an
    /// enrolment secret bound to EC2 instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_identity: Option<Ec2Identity>,
}

/// The longest instance identity document (AWS's are under 1 KiB).
pub const MAX_IDENTITY_DOCUMENT: usize = 4096;

/// What an EC2 instance reads from its metadata service: the identity
/// document (JSON, kept byte for byte: the signature covers those bytes)
/// and its base64 RSA-SHA256 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Identity {
    pub document: String,
    pub signature: String,
}

impl Ec2Identity {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.document.len() > MAX_IDENTITY_DOCUMENT || self.signature.len() > MAX_IDENTITY_DOCUMENT {
            return Err(Invalid(format!(
                "ec2_identity: the document and its signature are at most {MAX_IDENTITY_DOCUMENT} bytes each"
            )));
        }
        Ok(())
    }
}

/// A key handed to a host: what goes into its bait.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeliveredKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub profile: String,
    pub region: String,
    /// For session credentials: the session token and when they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<DeliveredSession>,
}

/// What session credentials carry beside the key ID and secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeliveredSession {
    pub token: String,
    pub expiration: DateTime<Utc>,
    /// The role session (`AROA…:name`, its assumed-role ARN) and when it
    /// started, for formats that keep the whole `AssumeRole` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
}

impl DeliveredKey {
    /// The expiration as the bait writes it (RFC 3339, seconds, `Z`).
    pub fn expiration_text(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    /// When the session started, as the bait writes it.
    pub fn issued_text(&self) -> Option<String> {
        self.session.as_ref()?.issued_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

impl std::fmt::Debug for DeliveredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveredKey").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// The server's answer to an enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolled {
    pub agent_id: i64,
    /// The agent's own credential for every later call (kept 0600 on the host).
    pub credential: String,
    pub key: DeliveredKey,
    pub template: PlacementTemplate,
    /// How often to send a heartbeat.
    pub heartbeat_seconds: u64,
}

/// One bait file written, as the agent confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacedFile {
    /// The path on the host (inside `--root` when one was given).
    pub path: String,
    /// The local user whose file it is.
    pub user: Option<String>,
    /// [`crate::bait::entry_digest`] of the entry written.
    pub digest: String,
}

fn check_path(path: &str) -> Result<(), Invalid> {
    if !path.starts_with('/') || path.len() > 1024 || crate::encoding::has_hidden(path) {
        return Err(Invalid(
            "path: an absolute path of at most 1024 characters, no control, zero-width or bidirectional characters"
                .into(),
        ));
    }
    Ok(())
}

impl PlacedFile {
    pub fn check(&self) -> Result<(), Invalid> {
        check_path(&self.path)?;
        if let Some(u) = &self.user {
            fact("user", u)?;
        }
        check_digest(&self.digest)
    }
}

fn check_digest(d: &str) -> Result<(), Invalid> {
    let hex = d.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Invalid("digest: sha256:<64 hex digits>".into()));
    }
    Ok(())
}

/// The files an agent wrote (an enrolment or a command done), and the
/// paths it would not write (each raises a tamper incident on the host's key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    pub files: Vec<PlacedFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedPath>,
}

/// A path the template names that the agent would not write: what it found
/// there (a link another user planted, a hard-linked file, a FIFO, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedPath {
    pub path: String,
    pub found: String,
}

/// The longest account of what an agent found at a path.
pub const MAX_FOUND: usize = 500;

impl RefusedPath {
    pub fn check(&self) -> Result<(), Invalid> {
        check_path(&self.path)?;
        if self.found.len() > MAX_FOUND {
            return Err(Invalid(format!("found: at most {MAX_FOUND} bytes")));
        }
        Ok(())
    }
}

/// What the template says of a host before it enrols: the agent checks
/// every path it names and enrols only when one can be written safely, so
/// no key is minted for a host where nothing can be placed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preflight {
    pub template: PlacementTemplate,
}

/// Why the agent gave up: nothing of the bait is on the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    pub reason: String,
}

/// Whether a bait entry is still where it was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// There, unchanged.
    Present,
    /// There, but not as written.
    Altered,
    /// The entry or the whole file is gone.
    Missing,
    /// Something is at the path that the agent will not read: a link
    /// another user planted, a FIFO or device, a file with extra hard
    /// links, too large or not text. Someone hid a change: a tamper signal
    /// like the others, raised with what the agent saw.
    Unreadable,
    /// Not reported yet.
    Unknown,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::Altered => "altered",
            Presence::Missing => "missing",
            Presence::Unreadable => "unreadable",
            Presence::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Presence {
        match raw {
            "present" => Presence::Present,
            "altered" => Presence::Altered,
            "missing" => Presence::Missing,
            "unreadable" => Presence::Unreadable,
            _ => Presence::Unknown,
        }
    }

    /// Someone changed, removed or replaced the bait: anything but
    /// "present and unchanged" (and not yet reported).
    pub fn tampered(self) -> bool {
        matches!(self, Presence::Altered | Presence::Missing | Presence::Unreadable)
    }
}

/// One bait file in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReport {
    pub path: String,
    pub presence: Presence,
    /// What the agent saw when the bait is not present and unchanged ("a
    /// FIFO", "a symbolic link owned by uid 1000", "3 hard links").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
}

/// What an agent sends every `heartbeat_seconds`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Heartbeat {
    pub files: Vec<FileReport>,
    /// How the agent watches its bait for reads: `fanotify`, `inotify` (no
    /// process information), `auditd`, or `off: <why>`.
    pub watch: Option<String>,
}

/// At most this many access records in one delivery.
pub const MAX_EVIDENCE_BATCH: usize = 500;

/// Reads of the bait an agent observed, oldest first, with how many it had
/// to drop (its queue was full while the server could not be reached).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceBatch {
    pub records: Vec<crate::evidence::Access>,
    pub dropped: u64,
}

/// The server's answer to an evidence delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EvidenceReply {
    /// Records filed now (a record delivered twice is filed once).
    pub filed: usize,
    /// Records counted and not kept: over the agent's quota, or for a path
    /// it never placed. The agent does not send them again.
    #[serde(default)]
    pub refused: usize,
}

/// What the server asks an agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// Write a new key in place of the old one and confirm; the server then
    /// retires the old key.
    Rotate,
    /// Take the honey entry out (every other byte of the file unchanged) and
    /// confirm; the server then retires the key.
    Remove,
    /// Write fresh session credentials of the same session canary in place
    /// of the ones about to expire, and confirm with the new digests.
    Refresh,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Rotate => "rotate",
            CommandKind::Remove => "remove",
            CommandKind::Refresh => "refresh",
        }
    }

    pub fn parse(raw: &str) -> Option<CommandKind> {
        match raw {
            "rotate" => Some(CommandKind::Rotate),
            "remove" => Some(CommandKind::Remove),
            "refresh" => Some(CommandKind::Refresh),
            _ => None,
        }
    }
}

/// One command, with the new key for a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    pub id: i64,
    pub kind: CommandKind,
    pub key: Option<DeliveredKey>,
}

/// The server's answer to a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub commands: Vec<Command>,
    pub heartbeat_seconds: u64,
}

/// How a command went.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDone {
    pub ok: bool,
    /// The files as they are now (a rotation: with the new key's digests).
    #[serde(default)]
    pub files: Vec<PlacedFile>,
    /// A removal that failed for some files: the paths it did take the bait
    /// out of (each file is all or nothing), so the server stops expecting
    /// bait there while the key stays live for the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// Where an enrolled host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    /// The key was handed out; the agent has not confirmed its bait yet.
    Enrolling,
    /// The bait is confirmed on the host.
    Active,
    /// The agent gave up or never confirmed; its key is retired.
    Failed,
    /// The bait was taken off the host by command; its key is retired.
    Removed,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Enrolling => "enrolling",
            AgentState::Active => "active",
            AgentState::Failed => "failed",
            AgentState::Removed => "removed",
        }
    }

    /// The state as stored; `None` for anything else.
    pub fn parse(raw: &str) -> Option<AgentState> {
        Some(match raw {
            "enrolling" => AgentState::Enrolling,
            "active" => AgentState::Active,
            "failed" => AgentState::Failed,
            "removed" => AgentState::Removed,
            _ => return None,
        })
    }
}

/// A host's bait state in a word, for lists: `ok`, `tampered`, `stale`,
/// `unconfirmed`, `unknown`, `failed` or `removed`, from its state, the
/// presence of each of its live bait files, and whether it went silent.
pub fn bait_state(state: AgentState, live: &[Presence], stale: bool) -> &'static str {
    match state {
        AgentState::Failed => return "failed",
        AgentState::Removed => return "removed",
        AgentState::Enrolling => return "unconfirmed",
        AgentState::Active => {}
    }
    if live.iter().any(|p| p.tampered()) {
        "tampered"
    } else if stale {
        "stale"
    } else if !live.is_empty() && live.iter().all(|p| *p == Presence::Present) {
        "ok"
    } else {
        "unknown"
    }
}

/// An EC2 instance as its verified identity document names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Instance {
    pub instance_id: String,
    pub account_id: String,
    pub region: String,
}

/// What an enrolment secret expects of the hosts that use it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentGuard {
    /// Networks (CIDR) hosts enrol from; empty: anywhere. An enrolment from
    /// elsewhere is refused.
    pub allowed_from: Vec<String>,
    /// How many hosts are expected; each enrolment beyond it is let through
    /// and raises an incident on the key it got.
    pub expected: Option<i64>,
    /// AWS accounts whose EC2 instances may enrol, each proving it with a
    /// signed identity document, one enrolment per instance; empty: not bound.
    pub ec2_accounts: Vec<String>,
}

/// An enrolment secret as listed: never the secret, only what it allows and
/// how it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentSecret {
    pub id: i64,
    /// How many hosts may enrol with it; `None`: any number until it expires.
    pub uses: Option<i64>,
    pub used: i64,
    pub expires_at: DateTime<Utc>,
    /// Labels every token handed out through it carries.
    pub labels: Labels,
    /// The placement template hosts enrolling with it use (by name).
    pub template: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What its creator expects of it; misuse raises an incident.
    #[serde(flatten)]
    pub guard: EnrolmentGuard,
    /// Attempts with it that were refused, and the last one's reason.
    pub refused: i64,
    pub last_refused_at: Option<DateTime<Utc>>,
    pub last_refusal: Option<String>,
}

impl EnrolmentSecret {
    /// `active`, `revoked`, `expired` or `used up`, at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now {
            "expired"
        } else if self.uses.is_some_and(|u| self.used >= u) {
            "used up"
        } else {
            "active"
        }
    }
}

/// One bait file an agent wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFile {
    pub id: i64,
    pub token_id: i64,
    pub placement_id: i64,
    pub path: String,
    pub local_user: Option<String>,
    /// The digest of the honey entry as written (never the secret).
    pub digest: String,
    pub presence: Presence,
    pub presence_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// A rotation or removal asked of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCommand {
    pub id: i64,
    pub agent_id: i64,
    pub kind: CommandKind,
    /// `pending`, `sent` (a rotation's new key went out), `done` or `failed`.
    pub state: String,
    pub new_token_id: Option<i64>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
    /// A refresh: when the session it last sent expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<DateTime<Utc>>,
}

impl AgentCommand {
    /// Not finished yet: the agent gets it on its next heartbeat.
    pub fn open(&self) -> bool {
        self.state == "pending" || self.state == "sent"
    }
}

/// An enrolled host as people see it: its facts, its bait files, the
/// commands asked of it, and its bait state in a word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: i64,
    #[serde(rename = "enrollment_id")]
    pub enrolment_id: i64,
    pub token_id: Option<i64>,
    pub access_key_id: Option<String>,
    pub host: HostFacts,
    /// The address the enrolment came from, as the server saw it.
    pub source_address: Option<String>,
    /// The EC2 instance the host proved to be, by a signed identity document.
    pub ec2: Option<Ec2Instance>,
    pub template: PlacementTemplate,
    pub state: AgentState,
    /// Why it failed, or what the last command said.
    pub detail: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Set when the host went silent for longer than `fleet.stale_after`.
    pub stale_since: Option<DateTime<Utc>>,
    /// How the agent watches its bait for reads (`fanotify`, `inotify`,
    /// `auditd`, `off: why`), as its last heartbeat said.
    pub watch: Option<String>,
    /// Reads the agent had to drop (its queue full while the server was away).
    pub evidence_dropped: i64,
    /// Read records the server refused: over the agent's quota
    /// (`evidence.agent_records_per_hour`, `evidence.agent_bytes`) or for
    /// paths it never placed.
    #[serde(default)]
    pub evidence_refused: i64,
    /// For a session canary: when the session credentials on the host expire
    /// (the server refreshes them on a heartbeat before then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<DateTime<Utc>>,
    pub files: Vec<AgentFile>,
    pub commands: Vec<AgentCommand>,
    /// `ok`, `tampered`, `stale`, `unconfirmed`, `unknown`, `failed` or `removed`.
    pub bait_state: String,
}

impl Agent {
    /// Its bait state in a word, as [`bait_state`] makes it.
    pub fn bait_state(&self) -> &str {
        &self.bait_state
    }

    /// Sets [`Agent::bait_state`] from its state, files and silence: the
    /// store calls it once the files are attached.
    pub fn settle_bait_state(&mut self) {
        let live: Vec<Presence> = self.files.iter().filter(|f| f.removed_at.is_none()).map(|f| f.presence).collect();
        self.bait_state = bait_state(self.state, &live, self.stale_since.is_some()).to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_and_files_are_bounded() {
        let ok = HostFacts { hostname: "db-3".into(), machine_id: Some("a".repeat(32)), ..Default::default() };
        ok.check().unwrap();
        assert!(HostFacts::default().check().is_err(), "a name is required");
        let long = HostFacts { os: Some("x".repeat(MAX_FACT + 1)), ..ok.clone() };
        assert!(long.check().is_err());
        let control = HostFacts { hostname: "db\u{1b}[31m".into(), ..ok };
        assert!(control.check().is_err());
        let file = PlacedFile {
            path: "/root/.aws/credentials".into(),
            user: None,
            digest: format!("sha256:{}", "a".repeat(64)),
        };
        file.check().unwrap();
        assert!(PlacedFile { path: "relative".into(), ..file.clone() }.check().is_err());
        assert!(PlacedFile { digest: "md5:x".into(), ..file.clone() }.check().is_err());
        assert!(PlacedFile { user: Some("a\nb".into()), ..file }.check().is_err());
        assert!(!format!(
            "{:?}",
            DeliveredKey {
                access_key_id: "AKIA".into(),
                secret_access_key: "s3cr3t".into(),
                profile: "p".into(),
                region: "r".into(),
                session: Some(DeliveredSession {
                    token: "t0k3n".into(),
                    expiration: Utc::now(),
                    role_id: None,
                    role_arn: None,
                    issued_at: None
                }),
            }
        )
        .contains("s3cr3t"));
    }
}
