//! Automated response, the part that decides (no I/O): what an action is,
//! its mode, and whether, when and how it may run for an incident. The
//! safety rules live here so every front door and the runner apply the same
//! ones:
//!
//! - an action whose mode is `off` never runs; `dry-run` only records what
//!   would change;
//! - an incident whose every call came from a declared own network gets no
//!   automatic action (approval still may), unless the action says
//!   `allow_own_network`;
//! - a grace period runs only if the incident was not marked false positive
//!   (or resolved) before it ended;
//! - at most `per_hour` actions start in any hour, and one target has at most
//!   one action in flight, however many incidents open together.
//!
//! The runner (app layer) asks [`decide`] when an incident opens and again
//! when a grace period ends, and [`RateLimit::admits`] right before it acts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::enrich::{conditions_hold, Condition, IncidentContext};
use crate::incident::IncidentState;
use crate::Invalid;

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Replace an EC2 instance's security groups with a quarantine group,
    /// remembering the old ones.
    QuarantineEc2,
    /// Deactivate the access keys of a named IAM user (reactivated on undo).
    DeactivateKeys,
    /// Attach a deny-all policy to a named IAM user or role (detached on undo).
    DenyPolicy,
    /// POST the incident record to a signed webhook.
    Webhook,
    /// Run a local command (argv, no shell) with the record on stdin.
    Command,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::QuarantineEc2,
        ActionKind::DeactivateKeys,
        ActionKind::DenyPolicy,
        ActionKind::Webhook,
        ActionKind::Command,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::QuarantineEc2 => "quarantine-ec2",
            ActionKind::DeactivateKeys => "deactivate-keys",
            ActionKind::DenyPolicy => "deny-policy",
            ActionKind::Webhook => "webhook",
            ActionKind::Command => "command",
        }
    }

    /// Whether the action changes an AWS account (and so needs a role to
    /// assume in the target's account and can be undone).
    pub fn changes_aws(self) -> bool {
        matches!(self, ActionKind::QuarantineEc2 | ActionKind::DeactivateKeys | ActionKind::DenyPolicy)
    }

    /// Whether undo can restore what it changed.
    pub fn undoable(self) -> bool {
        self.changes_aws()
    }
}

impl std::str::FromStr for ActionKind {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| {
            Invalid(format!("{s:?} is not an action kind; use {}", ActionKind::ALL.map(ActionKind::as_str).join(", ")))
        })
    }
}

/// When an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "seconds", rename_all = "kebab-case")]
pub enum Mode {
    Off,
    /// Record exactly what would change; change nothing.
    DryRun,
    /// Wait for a responder to approve.
    Approval,
    /// Run after this many seconds unless the incident is marked false
    /// positive (or resolved) first.
    Grace(i64),
    /// Run at once.
    Automatic,
}

/// The longest grace period: a day.
pub const MAX_GRACE_SECONDS: i64 = 86_400;

impl Mode {
    /// `off`, `dry-run`, `approval`, `grace:15m` (`s`, `m`, `h`), `automatic`.
    pub fn parse(raw: &str) -> Result<Mode, Invalid> {
        let raw = raw.trim();
        let bad = || {
            Invalid(format!(
                "{raw:?} is not a mode; use off, dry-run, approval, grace:15m (s, m or h, at most 24h) or automatic"
            ))
        };
        Ok(match raw {
            "off" => Mode::Off,
            "dry-run" => Mode::DryRun,
            "approval" => Mode::Approval,
            "automatic" => Mode::Automatic,
            other => {
                let period = other.strip_prefix("grace:").ok_or_else(bad)?;
                let (n, unit) = period.split_at(period.len().saturating_sub(1));
                let n: i64 = n.parse().map_err(|_| bad())?;
                let seconds = match unit {
                    "s" => n,
                    "m" => n * 60,
                    "h" => n * 3600,
                    _ => return Err(bad()),
                };
                if !(1..=MAX_GRACE_SECONDS).contains(&seconds) {
                    return Err(bad());
                }
                Mode::Grace(seconds)
            }
        })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Off => f.write_str("off"),
            Mode::DryRun => f.write_str("dry-run"),
            Mode::Approval => f.write_str("approval"),
            Mode::Automatic => f.write_str("automatic"),
            Mode::Grace(s) if s % 3600 == 0 => write!(f, "grace:{}h", s / 3600),
            Mode::Grace(s) if s % 60 == 0 => write!(f, "grace:{}m", s / 60),
            Mode::Grace(s) => write!(f, "grace:{s}s"),
        }
    }
}

/// The part of an action's definition that decides whether it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub mode: Mode,
    /// Context conditions that must all hold (`tool=*`).
    #[serde(default, rename = "if")]
    pub when: Vec<Condition>,
    #[serde(default)]
    pub unless: Vec<Condition>,
    /// Run automatically even when every call came from our own networks.
    #[serde(default)]
    pub allow_own_network: bool,
}

/// What to do now about one action for one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing, and why (said on the timeline).
    Skip(String),
    /// Record what would change.
    DryRun,
    /// Wait for a responder.
    AwaitApproval,
    /// Ask again at this time.
    WaitUntil(DateTime<Utc>),
    /// Act (after the rate limit admits it).
    Run,
}

/// Whether `trigger` acts on an incident in `state` with `context`, opened
/// (or last asked) at `since`, now.
pub fn decide(
    trigger: &Trigger,
    context: &IncidentContext,
    state: IncidentState,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Decision {
    if trigger.mode == Mode::Off {
        return Decision::Skip("the action is off".into());
    }
    if !conditions_hold(context, &trigger.when, &trigger.unless) {
        return Decision::Skip("its conditions do not hold for this incident".into());
    }
    match state {
        IncidentState::FalsePositive => return Decision::Skip("the incident was marked false positive".into()),
        IncidentState::Resolved => return Decision::Skip("the incident was resolved".into()),
        _ => {}
    }
    let automatic = matches!(trigger.mode, Mode::Automatic | Mode::Grace(_));
    if automatic && context.own_network_only && !trigger.allow_own_network {
        return Decision::Skip("every call came from our own networks: no automatic action (approve it to run)".into());
    }
    match trigger.mode {
        Mode::Off => unreachable!("handled above"),
        Mode::DryRun => Decision::DryRun,
        Mode::Approval => Decision::AwaitApproval,
        Mode::Automatic => Decision::Run,
        Mode::Grace(seconds) => {
            let due = since + Duration::seconds(seconds);
            if now < due {
                Decision::WaitUntil(due)
            } else {
                Decision::Run
            }
        }
    }
}

/// Outside text as an error message may repeat it: control characters
/// escaped, at most `max` characters.
fn shown(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    crate::encoding::printable(&cut).into_owned()
}

/// An EC2 instance ID as AWS writes it: `i-` and 8 or 17 hex digits.
pub fn check_instance_id(raw: &str) -> Result<String, Invalid> {
    let id = raw.trim();
    let hex = id.strip_prefix("i-").unwrap_or("");
    if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(id.to_string())
    } else {
        Err(Invalid(format!("{:?} is not an EC2 instance ID (i- and 8 or 17 lowercase hex digits)", shown(id, 40))))
    }
}

/// An IAM user or role name: 1 to 64 of letters, digits and `+=,.@_-`.
pub fn check_iam_name(raw: &str, what: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    if (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)) {
        Ok(name.to_string())
    } else {
        Err(Invalid(format!("{:?} is not an IAM {what} name (1 to 64 letters, digits and +=,.@_-)", shown(name, 80))))
    }
}

/// An AWS account ID: 12 digits.
pub fn check_account(raw: &str) -> Result<String, Invalid> {
    let a = raw.trim();
    if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
        Ok(a.to_string())
    } else {
        Err(Invalid(format!("{:?} is not an AWS account ID (12 digits)", shown(a, 40))))
    }
}

/// An IAM role ARN (`arn:aws:iam::123456789012:role/NAME`, paths allowed);
/// gives the account it is in.
pub fn check_role_arn(raw: &str) -> Result<(String, String), Invalid> {
    let arn = raw.trim();
    let bad = || {
        Invalid(format!(
            "{:?} is not an IAM role ARN like arn:aws:iam::123456789012:role/honeytrail-responder",
            shown(arn, 120)
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6
        || parts[0] != "arn"
        || !parts[1].starts_with("aws")
        || parts[2] != "iam"
        || !parts[3].is_empty()
    {
        return Err(bad());
    }
    let account = check_account(parts[4]).map_err(|_| bad())?;
    let name = parts[5].strip_prefix("role/").ok_or_else(bad)?;
    let last = name.rsplit('/').next().unwrap_or("");
    check_iam_name(last, "role").map_err(|_| bad())?;
    if name.len() > 512 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b)) {
        return Err(bad());
    }
    Ok((arn.to_string(), account))
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Not run, and why (`reason`); asked again while the incident is open.
    Skipped,
    /// A grace period runs until `due_at`.
    Waiting,
    /// A responder has to approve.
    AwaitingApproval,
    /// Ready; held by the rate limit until `due_at` when that is set.
    Queued,
    Running,
    Done,
    /// What it would change was recorded; nothing changed.
    DryRun,
    Failed,
    /// Cancelled by a responder or by the incident's end before it ran.
    Cancelled,
    /// Undone: the state before it is back.
    Undone,
    /// Undo was tried and could not restore the state (`reason` says why).
    UndoFailed,
}

impl RunState {
    pub const ALL: [RunState; 11] = [
        RunState::Skipped,
        RunState::Waiting,
        RunState::AwaitingApproval,
        RunState::Queued,
        RunState::Running,
        RunState::Done,
        RunState::DryRun,
        RunState::Failed,
        RunState::Cancelled,
        RunState::Undone,
        RunState::UndoFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Skipped => "skipped",
            RunState::Waiting => "waiting",
            RunState::AwaitingApproval => "awaiting-approval",
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::DryRun => "dry-run",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Undone => "undone",
            RunState::UndoFailed => "undo-failed",
        }
    }

    /// Not yet run: a responder may still cancel it.
    pub fn pending(self) -> bool {
        matches!(self, RunState::Skipped | RunState::Waiting | RunState::AwaitingApproval | RunState::Queued)
    }

    /// The states a responder can approve: awaiting approval, or skipped
    /// because every call came from our own networks.
    pub const APPROVABLE: [RunState; 2] = [RunState::AwaitingApproval, RunState::Skipped];

    /// Whether a run in this state can be undone: done, or an undo that
    /// failed and may be asked again after fixing things by hand.
    pub fn undoable(self) -> bool {
        matches!(self, RunState::Done | RunState::UndoFailed)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunState {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| {
            Invalid(format!("{s:?} is not a run state; use {}", RunState::ALL.map(RunState::as_str).join(", ")))
        })
    }
}

/// What an action acts with and on, besides its trigger. Targets given here
/// override the placement's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionSettings {
    /// The role to assume in the target's account; else the one configured
    /// for that account (`[actions.roles]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The account to act in, when the placement does not name one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The region of the instance (EC2 is regional); default: the
    /// configured AWS region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_user: Option<String>,
    /// deny-policy on a role instead of the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<String>,
    /// quarantine-ec2: the security group that isolates (no rules, or only
    /// the responders' access).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_group: Option<String>,
    /// deny-policy: the managed policy to attach; default AWS's AWSDenyAll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_arn: Option<String>,
    /// command: the program and its arguments (no shell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// command and webhook: how long they may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// The longest a command or webhook action may take.
pub const MAX_TIMEOUT_SECONDS: u64 = 600;

impl ActionSettings {
    /// Checks what `kind` needs and that every value is well-formed.
    pub fn check(&mut self, kind: ActionKind) -> Result<(), Invalid> {
        fn opt(v: &mut Option<String>, check: impl Fn(&str) -> Result<String, Invalid>) -> Result<(), Invalid> {
            *v = match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(raw) => Some(check(raw)?),
                None => None,
            };
            Ok(())
        }
        opt(&mut self.role_arn, |s| check_role_arn(s).map(|(arn, _)| arn))?;
        opt(&mut self.account, check_account)?;
        opt(&mut self.region, |s| {
            if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                Ok(s.to_string())
            } else {
                Err(Invalid(format!("{:?} is not an AWS region like eu-west-1", shown(s, 40))))
            }
        })?;
        opt(&mut self.instance_id, check_instance_id)?;
        opt(&mut self.iam_user, |s| check_iam_name(s, "user"))?;
        opt(&mut self.iam_role, |s| check_iam_name(s, "role"))?;
        opt(&mut self.quarantine_group, |s| {
            let hex = s.strip_prefix("sg-").unwrap_or("");
            if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(s.to_string())
            } else {
                Err(Invalid(format!("{:?} is not a security group ID (sg- and 8 or 17 hex digits)", shown(s, 40))))
            }
        })?;
        opt(&mut self.policy_arn, |s| {
            if s.starts_with("arn:aws")
                && s.contains(":iam::")
                && s.contains(":policy/")
                && s.len() <= 2048
                && !s.chars().any(char::is_control)
            {
                Ok(s.to_string())
            } else {
                Err(Invalid(format!("{:?} is not an IAM policy ARN", shown(s, 80))))
            }
        })?;
        if let Some(t) = self.timeout_seconds {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&t) {
                return Err(Invalid(format!("a timeout is 1 to {MAX_TIMEOUT_SECONDS} seconds")));
            }
        }
        if self.iam_user.is_some() && self.iam_role.is_some() {
            return Err(Invalid("give --iam-user or --iam-role, not both".into()));
        }
        let aws_only = self.role_arn.is_some() || self.account.is_some() || self.region.is_some();
        match kind {
            ActionKind::QuarantineEc2 if self.quarantine_group.is_none() => {
                return Err(Invalid(
                    "quarantine-ec2 needs --quarantine-group sg-…: the security group that isolates the instance"
                        .into(),
                ))
            }
            ActionKind::Command => {
                let Some(program) = self.command.first() else {
                    return Err(Invalid(
                        "a command action needs the program and its arguments: --command /path/to/program --arg …"
                            .into(),
                    ));
                };
                if !program.starts_with('/') {
                    return Err(Invalid(format!(
                        "the program {:?} must be an absolute path: no search of PATH",
                        shown(program, 200)
                    )));
                }
                if self.command.iter().any(|a| a.contains('\0') || a.len() > 4096) || self.command.len() > 64 {
                    return Err(Invalid(
                        "a command has at most 64 arguments of at most 4096 bytes, without NUL".into(),
                    ));
                }
            }
            _ => {}
        }
        if !kind.changes_aws() && aws_only {
            return Err(Invalid(format!(
                "{} does not act in AWS: --role-arn, --account and --region do not apply",
                kind.as_str()
            )));
        }
        if kind != ActionKind::Command && !self.command.is_empty() {
            return Err(Invalid("--command applies to command actions only".into()));
        }
        Ok(())
    }
}

/// The global limit on actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// At most this many actions start in any hour.
    pub per_hour: u32,
}

/// Why the limit holds an action back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// `per_hour` actions started in the last hour; ask again then.
    Hourly { until: DateTime<Utc> },
    /// Another action on the same target is in flight.
    TargetBusy,
}

impl RateLimit {
    /// Whether an action on `target` may start now, given the start times of
    /// the actions of the last hour and the targets of those in flight.
    pub fn admits(
        &self,
        started: &[DateTime<Utc>],
        in_flight: &[&str],
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Held> {
        if in_flight.contains(&target) {
            return Err(Held::TargetBusy);
        }
        let hour_ago = now - Duration::hours(1);
        let mut recent: Vec<DateTime<Utc>> = started.iter().copied().filter(|t| *t > hour_ago).collect();
        if recent.len() >= self.per_hour as usize {
            recent.sort();
            // Free again when the oldest of the last `per_hour` is an hour old.
            let oldest = recent[recent.len() - self.per_hour as usize];
            return Err(Held::Hourly { until: oldest + Duration::hours(1) });
        }
        Ok(())
    }
}

/// An action: what it does, when, and for which incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: i64,
    pub name: String,
    pub kind: ActionKind,
    pub trigger: Trigger,
    /// Only incidents this route matches; `None`: every incident.
    pub route: Option<String>,
    pub settings: ActionSettings,
    /// A webhook's URL and signing secret are stored sealed.
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// One action for one incident: its state, plan, outcome and who decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    pub id: i64,
    pub action_id: i64,
    pub action: String,
    pub kind: ActionKind,
    pub incident_id: i64,
    pub state: RunState,
    /// What it acts on (`i-0abc… in 123456789012`).
    pub target: String,
    /// Why it waits, was skipped or failed.
    pub reason: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// What it changes (or, dry-run, would change).
    pub plan: Option<String>,
    /// What undo restores, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_state: Option<String>,
    /// What happened: the result, a command's output.
    pub output: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who approved or cancelled it.
    pub decided_by: Option<String>,
    pub undone_by: Option<String>,
}

impl ActionRun {
    /// Whether a responder may approve it now.
    pub fn can_approve(&self) -> bool {
        RunState::APPROVABLE.contains(&self.state)
    }

    /// Whether it has not started, so it can be cancelled.
    pub fn can_cancel(&self) -> bool {
        self.state.pending()
    }

    /// Whether it is done and its kind can be undone.
    pub fn can_undo(&self) -> bool {
        self.kind.undoable() && self.state.undoable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn trigger(mode: Mode) -> Trigger {
        Trigger { mode, when: Vec::new(), unless: Vec::new(), allow_own_network: false }
    }

    #[test]
    fn modes_parse_and_print() {
        for raw in ["off", "dry-run", "approval", "grace:15m", "grace:2h", "grace:90s", "automatic"] {
            assert_eq!(Mode::parse(raw).unwrap().to_string(), raw);
        }
        assert_eq!(Mode::parse("grace:60m").unwrap(), Mode::Grace(3600));
        for bad in ["grace:", "grace:0m", "grace:25h", "grace:5d", "grace:-1m", "auto", ""] {
            assert!(Mode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!("quarantine-ec2".parse::<ActionKind>().unwrap(), ActionKind::QuarantineEc2);
        assert!("reboot".parse::<ActionKind>().unwrap_err().0.contains("deactivate-keys"));
        let json = serde_json::to_string(&trigger(Mode::Grace(900))).unwrap();
        assert_eq!(serde_json::from_str::<Trigger>(&json).unwrap(), trigger(Mode::Grace(900)));
    }

    #[test]
    fn the_safety_rules_hold() {
        let outside = IncidentContext::default();
        let ours = IncidentContext { own_network_only: true, networks: vec!["corp".into()], ..Default::default() };
        let open = IncidentState::Open;
        assert!(matches!(decide(&trigger(Mode::Off), &outside, open, at(0), at(0)), Decision::Skip(_)));
        assert_eq!(decide(&trigger(Mode::DryRun), &outside, open, at(0), at(0)), Decision::DryRun);
        assert_eq!(decide(&trigger(Mode::Approval), &outside, open, at(0), at(0)), Decision::AwaitApproval);
        assert_eq!(decide(&trigger(Mode::Automatic), &outside, open, at(0), at(0)), Decision::Run);
        // A grace period waits, then runs, unless the incident was marked false positive.
        let grace = trigger(Mode::Grace(900));
        assert_eq!(decide(&grace, &outside, open, at(0), at(5)), Decision::WaitUntil(at(15)));
        assert_eq!(decide(&grace, &outside, open, at(0), at(15)), Decision::Run);
        assert!(matches!(decide(&grace, &outside, IncidentState::FalsePositive, at(0), at(15)), Decision::Skip(_)));
        assert!(matches!(decide(&grace, &outside, IncidentState::Resolved, at(0), at(15)), Decision::Skip(_)));
        // Our own networks: no automatic action, approval still possible.
        let Decision::Skip(why) = decide(&trigger(Mode::Automatic), &ours, open, at(0), at(0)) else { panic!() };
        assert!(why.contains("own networks"), "{why}");
        assert!(matches!(decide(&grace, &ours, open, at(0), at(20)), Decision::Skip(_)));
        assert_eq!(decide(&trigger(Mode::Approval), &ours, open, at(0), at(0)), Decision::AwaitApproval);
        let allowed = Trigger { allow_own_network: true, ..trigger(Mode::Automatic) };
        assert_eq!(decide(&allowed, &ours, open, at(0), at(0)), Decision::Run);
        // Conditions.
        let tools_only = Trigger { when: vec![Condition::parse("tool=*").unwrap()], ..trigger(Mode::Automatic) };
        assert!(matches!(decide(&tools_only, &outside, open, at(0), at(0)), Decision::Skip(_)));
        let kali = IncidentContext { tools: vec!["Kali Linux".into()], ..Default::default() };
        assert_eq!(decide(&tools_only, &kali, open, at(0), at(0)), Decision::Run);
    }

    #[test]
    fn the_rate_limit_holds_with_many_incidents_at_once() {
        let limit = RateLimit { per_hour: 5 };
        let mut started = Vec::new();
        let mut in_flight: Vec<String> = Vec::new();
        let mut ran = 0;
        // Twenty incidents open in the same minute, each on its own target.
        for n in 0..20 {
            let target = format!("i-{n:017x}");
            let flying: Vec<&str> = in_flight.iter().map(String::as_str).collect();
            if limit.admits(&started, &flying, &target, at(0)).is_ok() {
                started.push(at(0));
                in_flight.push(target);
                ran += 1;
            }
        }
        assert_eq!(ran, 5);
        assert_eq!(
            limit.admits(&started, &[], "i-new", at(30)),
            Err(Held::Hourly { until: at(60) }),
            "free again an hour after the oldest"
        );
        assert_eq!(limit.admits(&started, &[], "i-new", at(61)), Ok(()));
        assert_eq!(limit.admits(&[], &["i-1"], "i-1", at(0)), Err(Held::TargetBusy), "one at a time per target");
    }
}
