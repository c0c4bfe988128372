//! Response actions: define them, list them and their runs, approve,
//! cancel and undo runs. The runner that decides and acts is
//! [`crate::response`].

use honeytrail_core::access::Permission;
use honeytrail_core::action::{ActionKind, ActionSettings, Mode, RunState, Trigger};
use honeytrail_core::enrich::parse_conditions;
use honeytrail_core::Secret;
use honeytrail_store::{NewAction, RunChange, RunFilter};
use serde::Deserialize;

use super::tokens::blank;
use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::action::{Action, ActionRun};

/// An action to add: the one declaration behind the command line's
/// `action add`, the API's body and the web UI's form.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The action's name: letters, digits, '-', '_' or '.'
    pub name: String,
    /// quarantine-ec2, deactivate-keys, deny-policy, webhook or command
    #[cfg_attr(feature = "clap", arg(long))]
    pub kind: String,
    /// off, dry-run, approval, grace:15m (s, m or h) or automatic
    #[cfg_attr(feature = "clap", arg(long))]
    pub mode: String,
    /// Only incidents this route matches
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub route: Option<String>,
    /// A context condition that must hold (network=corp, tool=*, tor, aws=ec2, country=DE, asn=3320, own-network); repeatable
    #[cfg_attr(feature = "clap", arg(long = "if", value_name = "COND"))]
    #[serde(default, rename = "if", deserialize_with = "crate::ops::input::one_or_many")]
    pub when: Vec<String>,
    /// A context condition that must not hold; repeatable
    #[cfg_attr(feature = "clap", arg(long, value_name = "COND"))]
    #[serde(default, deserialize_with = "crate::ops::input::one_or_many")]
    pub unless: Vec<String>,
    /// Act automatically even when every call came from our own networks
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub allow_own_network: bool,
    /// The role to assume in the target's account (default: actions.roles for that account)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The account to act in when the placement names none
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub account: Option<String>,
    /// The region of the instance (default: aws.region)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub region: Option<String>,
    /// Act on this instance instead of the placement's
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Act on this IAM user instead of the placement's
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub iam_user: Option<String>,
    /// deny-policy: attach to this IAM role instead of a user
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub iam_role: Option<String>,
    /// quarantine-ec2: the security group that isolates (in the instance's VPC)
    #[cfg_attr(feature = "clap", arg(long, value_name = "SG"))]
    #[serde(default)]
    pub quarantine_group: Option<String>,
    /// deny-policy: the managed policy (default arn:aws:iam::aws:policy/AWSDenyAll)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub policy_arn: Option<String>,
    /// command: the program, an absolute path (no shell); over the API, the program and its arguments
    #[cfg_attr(feature = "clap", arg(long = "command", value_name = "PROGRAM"))]
    #[serde(default)]
    pub command: Vec<String>,
    /// command: one argument (repeatable, in order)
    #[cfg_attr(feature = "clap", arg(long = "arg", value_name = "ARG", allow_hyphen_values = true))]
    #[serde(skip)]
    pub args: Vec<String>,
    /// command and webhook: seconds it may take (default 60 and 30)
    #[cfg_attr(feature = "clap", arg(long = "timeout"))]
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// webhook: where to POST the incident record (stored sealed)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub url: Option<String>,
    /// webhook: the signing secret (X-Honeytrail-Signature), at least 16 characters (stored sealed)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub secret: Option<String>,
}

/// The shortest webhook signing secret accepted.
const MIN_SECRET: usize = 16;

fn check_name(name: &str) -> OpResult<String> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || name == "runs"
    {
        return Err(OpError::invalid(format!(
            "{:?} is not an action name: 1 to 64 letters, digits, '-', '_' or '.' (and not \"runs\")",
            honeytrail_core::encoding::printable(&name.chars().take(80).collect::<String>())
        )));
    }
    Ok(name.to_string())
}

impl Ops {
    /// Adds an action. Command actions run programs on this server, so
    /// they can be added only at its command line, never over the API.
    pub async fn add_action(&self, actor: &Actor, r: &ActionRequest) -> OpResult<Action> {
        actor.require(Permission::Administer)?;
        let name = check_name(&r.name)?;
        let kind: ActionKind = r.kind.parse()?;
        let trigger = Trigger {
            mode: Mode::parse(&r.mode)?,
            when: parse_conditions(&r.when)?,
            unless: parse_conditions(&r.unless)?,
            allow_own_network: r.allow_own_network,
        };
        let mut settings = ActionSettings {
            role_arn: blank(&r.role_arn),
            account: blank(&r.account),
            region: blank(&r.region),
            instance_id: blank(&r.instance_id),
            iam_user: blank(&r.iam_user),
            iam_role: blank(&r.iam_role),
            quarantine_group: blank(&r.quarantine_group),
            policy_arn: blank(&r.policy_arn),
            command: r.command.iter().chain(&r.args).cloned().collect(),
            timeout_seconds: r.timeout_seconds,
        };
        settings.check(kind)?;
        if kind == ActionKind::Command && !actor.from.starts_with("cli on ") {
            return Err(OpError::forbidden(
                "a command action runs a program on the server, so it can be added only at the server's command line (`honeytrail action add … --kind command`), not over the API or the web UI",
            ));
        }
        if let (Some(arn), Some(account)) = (&settings.role_arn, &settings.account) {
            if honeytrail_aws::account_of_arn(arn).as_deref() != Some(account.as_str()) {
                return Err(OpError::invalid(format!("--role-arn {arn} is not in --account {account}")));
            }
        }
        if kind == ActionKind::DenyPolicy && settings.iam_role.is_some() && settings.iam_user.is_some() {
            return Err(OpError::invalid("give --iam-user or --iam-role, not both"));
        }
        let route = blank(&r.route);
        if let Some(route) = &route {
            if !self.store.routes().await?.iter().any(|x| &x.name == route) {
                return Err(OpError::invalid(format!(
                    "there is no route {route:?}; add it first (`honeytrail route add {route} …`) or leave --route out"
                )));
            }
        }
        let secret = match kind {
            ActionKind::Webhook => {
                let url = blank(&r.url).ok_or_else(|| OpError::invalid("a webhook action needs --url"))?;
                let secret = blank(&r.secret).ok_or_else(|| {
                    OpError::invalid("a webhook action is signed: give --secret (at least 16 characters) and check X-Honeytrail-Signature at the receiver")
                })?;
                if secret.len() < MIN_SECRET {
                    return Err(OpError::invalid(format!(
                        "the webhook secret is too short: at least {MIN_SECRET} characters"
                    )));
                }
                honeytrail_alert::target::check_action_target(&url, &self.config.alerts.allowed_hosts)
                    .await
                    .map_err(|f| OpError::invalid(f.message))?;
                let config = honeytrail_alert::channels::webhook::WebhookConfig {
                    url,
                    secret,
                    headers: Default::default(),
                    format: Default::default(),
                };
                Some(Secret::new(serde_json::to_string(&config).expect("webhook settings serialise")))
            }
            _ if r.url.is_some() || r.secret.is_some() => {
                return Err(OpError::invalid("--url and --secret apply to webhook actions only"))
            }
            _ => None,
        };
        let detail = format!("{} {}", kind.as_str(), trigger.mode);
        let action = self
            .audited(actor, "action.add", &name, Some(&detail))
            .add_action(&NewAction { name, kind, trigger, route, settings, secret, created_by: actor.name.clone() })
            .await?;
        self.signals().actions_due.notify_one();
        Ok(action)
    }

    pub async fn list_actions(&self, actor: &Actor) -> OpResult<Vec<Action>> {
        actor.require(Permission::Read)?;
        Ok(self.store.actions().await?)
    }

    /// Changes an action's mode (`off` stops it from deciding anything new).
    pub async fn set_action_mode(&self, actor: &Actor, name: &str, mode: &str) -> OpResult<Action> {
        actor.require(Permission::Administer)?;
        let mut action = self.store.action(name).await?;
        action.trigger.mode = Mode::parse(mode)?;
        let mode = action.trigger.mode.to_string();
        Ok(self.audited(actor, "action.mode", name, Some(&mode)).set_action_trigger(name, &action.trigger).await?)
    }

    pub async fn remove_action(&self, actor: &Actor, name: &str) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        Ok(self.audited(actor, "action.remove", name, None).remove_action(name).await?)
    }

    /// Runs, newest first: of one incident, or all.
    pub async fn action_runs(
        &self,
        actor: &Actor,
        incident: Option<i64>,
        state: Option<&str>,
    ) -> OpResult<Vec<ActionRun>> {
        actor.require(Permission::Read)?;
        let states = match state.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => vec![s.parse::<RunState>()?],
            None => Vec::new(),
        };
        if let Some(id) = incident {
            self.store.incident(id).await?;
        }
        Ok(self
            .store
            .action_runs(&RunFilter { incident_id: incident, states, limit: Some(1000), ..Default::default() })
            .await?)
    }

    pub async fn action_run(&self, actor: &Actor, id: i64) -> OpResult<ActionRun> {
        actor.require(Permission::Read)?;
        Ok(self.store.action_run(id).await?)
    }

    /// Approves a run that waits for approval (or one skipped because
    /// every call came from our own networks): it starts on the next pass,
    /// within the rate limit.
    pub async fn approve_run(&self, actor: &Actor, id: i64) -> OpResult<ActionRun> {
        actor.require(Permission::Respond)?;
        let run = self.store.action_run(id).await?;
        let incident = self.store.incident(run.incident_id).await?;
        if !incident.state.accepts_events() {
            return Err(OpError::conflict(
                "incident-closed",
                format!("incident #{} is {}: its actions can no longer be approved", incident.id, incident.state),
            ));
        }
        let change = RunChange {
            decided_by: Some(actor.name.clone()),
            reason: Some(format!("approved by {}", actor.name)),
            note: Some(format!("{} approved by {}", run.action, actor.name)),
            actor: actor.name.clone(),
            ..Default::default()
        };
        let moved = self
            .audited(actor, "action.approve", &format!("action run #{id}"), Some(&run.action))
            .move_run(id, &RunState::APPROVABLE, RunState::Queued, &change)
            .await?;
        if !moved {
            return Err(OpError::conflict(
                "run-not-waiting",
                format!("action run #{id} is {}: only a run awaiting approval (or skipped) can be approved", run.state),
            ));
        }
        self.signals().actions_due.notify_one();
        Ok(self.store.action_run(id).await?)
    }

    /// Cancels a run that has not started.
    pub async fn cancel_run(&self, actor: &Actor, id: i64) -> OpResult<ActionRun> {
        actor.require(Permission::Respond)?;
        let run = self.store.action_run(id).await?;
        let change = RunChange {
            decided_by: Some(actor.name.clone()),
            reason: Some(format!("cancelled by {}", actor.name)),
            note: Some(format!("{} cancelled by {}", run.action, actor.name)),
            actor: actor.name.clone(),
            finished: true,
            ..Default::default()
        };
        let pending: Vec<RunState> = RunState::ALL.into_iter().filter(|s| s.pending()).collect();
        let moved = self
            .audited(actor, "action.cancel", &format!("action run #{id}"), Some(&run.action))
            .move_run(id, &pending, RunState::Cancelled, &change)
            .await?;
        if !moved {
            return Err(OpError::conflict(
                "run-not-pending",
                format!("action run #{id} is {}: only a run that has not started can be cancelled (a done one can be undone)", run.state),
            ));
        }
        Ok(self.store.action_run(id).await?)
    }

    /// Undoes a done run: restores exactly the state before it, or says
    /// why it cannot (the instance is gone, its groups changed meanwhile).
    pub async fn undo_action_run(&self, actor: &Actor, id: i64) -> OpResult<ActionRun> {
        actor.require(Permission::Respond)?;
        let run = self.store.action_run(id).await?;
        if !run.kind.undoable() {
            return Err(OpError::conflict(
                "not-undoable",
                format!(
                    "action run #{id} is a {} action, which changes nothing honeytrail can restore",
                    run.kind.as_str()
                ),
            ));
        }
        if !run.state.undoable() {
            return Err(OpError::conflict(
                "run-not-done",
                format!("action run #{id} is {}: only a done run can be undone", run.state),
            ));
        }
        let action = self
            .store
            .actions()
            .await?
            .into_iter()
            .find(|a| a.id == run.action_id)
            .ok_or_else(|| OpError::not_found(format!("the action of run #{id}")))?;
        let store = self.audited(actor, "action.undo", &format!("action run #{id}"), Some(&run.action));
        let (state, text) =
            self.undo_run(&store, &run, &action, &actor.name).await.map_err(|e| OpError::invalid(format!("{e:#}")))?;
        self.alert_queued();
        if state == RunState::UndoFailed {
            return Err(OpError::conflict("undo-failed", format!("action run #{id} was not undone: {text}")));
        }
        Ok(self.store.action_run(id).await?)
    }
}
