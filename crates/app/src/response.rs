//! The response runner: what `honeytrail serve` does every few seconds (and
//! `honeytrail action pass` once). For each unresolved incident and each
//! action it asks the core's [`decide`], records the decision as a run (on
//! the incident's timeline), moves grace periods that ended and approved
//! runs on, and starts what is due when the rate limit admits it.
//!
//! How each kind acts, and how undo checks that it finds exactly the state
//! it left before restoring the one before, is here too. AWS kinds act
//! through a role assumed in the target's account (`honeytrail_aws::response`).

use std::time::Duration as StdDuration;

use anyhow::Result;
use chrono::Utc;
use honeytrail_aws::response::{instance_gone, Principal, Responder, ResponseError, DENY_ALL_POLICY_ARN};
use honeytrail_aws::AwsSettings;
use honeytrail_core::action::{decide, ActionKind, Decision, Held, Mode, RateLimit, RunState};
use honeytrail_core::incident::{Incident, IncidentState};
use honeytrail_store::{Action, ActionRun, PlacementFilter, RunChange, RunFilter, Start};
use serde::{Deserialize, Serialize};

use crate::Ops;

/// The actor honeytrail's own decisions are recorded under.
pub const RUNNER: &str = "honeytrail response";

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassSummary {
    /// Runs recorded for the first time (any state).
    pub decided: usize,
    pub started: usize,
    pub done: usize,
    pub failed: usize,
    /// Held back by the rate limit.
    pub held: usize,
    pub cancelled: usize,
}

/// What an action acts on, resolved from the action and the placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// For AWS kinds: the account, the role to assume there, the region.
    pub aws: Option<AwsTarget>,
    pub instance_id: Option<String>,
    pub principal: Option<Principal>,
    /// The one line that names it (`instance i-0abc… in 123456789012`).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTarget {
    pub account: String,
    pub role_arn: String,
    pub region: Option<String>,
}

/// What undo restores, as stored with the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Before {
    /// The instance's groups before quarantine, and the quarantine group.
    Groups { instance_id: String, groups: Vec<String>, quarantine_group: String },
    /// The keys that were active and were deactivated.
    Keys { user: String, deactivated: Vec<String> },
    /// Whether the policy was attached already (then undo leaves it).
    Policy { principal: String, role: bool, policy_arn: String, attached_before: bool },
}

/// What running (or dry-running) did.
struct Outcome {
    plan: String,
    output: String,
    before: Option<Before>,
}

fn quiet(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    let mut out = honeytrail_core::encoding::printable(&cut).into_owned();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

impl Ops {
    fn aws_settings(&self) -> AwsSettings {
        crate::context::aws_settings(&self.config)
    }

    fn rate_limit(&self) -> RateLimit {
        RateLimit { per_hour: self.config.actions.per_hour.max(1) }
    }

    /// One pass of the runner. A failure of one run is recorded on its
    /// incident and never stops the others.
    pub async fn response_pass(&self) -> Result<PassSummary> {
        let mut summary = PassSummary::default();
        let actions = self.store.actions().await?;
        if actions.is_empty() {
            return Ok(summary);
        }
        let enricher = self.enricher().await?;
        let incidents =
            self.store.incidents(&honeytrail_store::IncidentFilter { unresolved: true, ..Default::default() }).await?;
        // First decisions, and skipped runs asked again (the incident may
        // have grown calls from outside our networks).
        for incident in &incidents {
            let context = enricher.incident(&self.store.incident_activity(incident.id).await?);
            let have = self.store.actions_with_runs(incident.id).await?;
            // An action acts only on incidents opened after it was added:
            // adding one must not act at once on trouble already being
            // handled by hand (the runs would surprise whoever handles it).
            let acts = |a: &&Action| {
                a.trigger.mode != Mode::Off && !have.contains(&a.id) && incident.opened_at >= a.created_at
            };
            for action in actions.iter().filter(acts) {
                if let Some(route) = &action.route {
                    if !self.store.route_matches(route, incident.id, &enricher).await? {
                        continue;
                    }
                }
                if self.first_decision(action, incident, &context).await? {
                    summary.decided += 1;
                }
            }
        }
        let skipped =
            self.store.action_runs(&RunFilter { states: vec![RunState::Skipped], ..Default::default() }).await?;
        for run in skipped {
            let Some(incident) = incidents.iter().find(|i| i.id == run.incident_id) else { continue };
            let Some(action) = actions.iter().find(|a| a.id == run.action_id) else { continue };
            let context = enricher.incident(&self.store.incident_activity(incident.id).await?);
            let decision = decide(&action.trigger, &context, incident.state, run.created_at, Utc::now());
            if !matches!(decision, Decision::Skip(_)) {
                self.apply_decision(&run, action, decision, &[RunState::Skipped]).await?;
            }
        }
        // Runs not started yet: the incident's end cancels them (a queued
        // one too: held by the rate limit, or approved before the false
        // positive mark); a grace period that ended is asked again.
        let open = self
            .store
            .action_runs(&RunFilter {
                states: vec![RunState::Waiting, RunState::AwaitingApproval, RunState::Queued],
                ..Default::default()
            })
            .await?;
        for run in open {
            let incident = self.store.incident(run.incident_id).await?;
            let Some(action) = actions.iter().find(|a| a.id == run.action_id) else { continue };
            if matches!(incident.state, IncidentState::FalsePositive | IncidentState::Resolved) {
                let why = if incident.state == IncidentState::FalsePositive {
                    "the incident was marked false positive first: not run"
                } else {
                    "the incident was resolved first: not run"
                };
                let change = self.change(format!("{} cancelled: {why}", action.name), false);
                if self
                    .store
                    .move_run(
                        run.id,
                        &[run.state],
                        RunState::Cancelled,
                        &RunChange { reason: Some(why.into()), finished: true, ..change },
                    )
                    .await?
                {
                    summary.cancelled += 1;
                }
                continue;
            }
            if run.state == RunState::Waiting && run.due_at.is_none_or(|d| d <= Utc::now()) {
                let context = enricher.incident(&self.store.incident_activity(incident.id).await?);
                let decision = decide(&action.trigger, &context, incident.state, run.created_at, Utc::now());
                self.apply_decision(&run, action, decision, &[RunState::Waiting]).await?;
            }
        }
        // Start what is due.
        let queued = self
            .store
            .action_runs(&RunFilter { states: vec![RunState::Queued], due_by: Some(Utc::now()), ..Default::default() })
            .await?;
        for run in queued.into_iter().rev() {
            let Some(action) = actions.iter().find(|a| a.id == run.action_id) else { continue };
            let change = self.change(format!("{} started on {}", action.name, run.target), false);
            match self.store.start_run(run.id, self.rate_limit(), &change).await? {
                Start::Gone => {}
                Start::Held(Held::TargetBusy) => summary.held += 1,
                Start::Held(Held::Hourly { until }) => {
                    summary.held += 1;
                    // Said once on the timeline; later passes only move the time.
                    let note = run.due_at.is_none().then(|| {
                        format!(
                            "{} held by the rate limit ({} actions per hour, actions.per_hour): starts at {}",
                            action.name,
                            self.rate_limit().per_hour,
                            until.format("%Y-%m-%d %H:%M:%SZ")
                        )
                    });
                    let change = RunChange {
                        due_at: Some(until),
                        reason: Some("held by the rate limit".into()),
                        note,
                        actor: RUNNER.into(),
                        ..Default::default()
                    };
                    self.store.move_run(run.id, &[RunState::Queued], RunState::Queued, &change).await?;
                }
                Start::Started => {
                    summary.started += 1;
                    if self.execute(&run, action).await? {
                        summary.done += 1;
                    } else {
                        summary.failed += 1;
                    }
                }
            }
        }
        Ok(summary)
    }

    fn change(&self, note: String, alert: bool) -> RunChange {
        RunChange { note: Some(note), actor: RUNNER.into(), alert, ..Default::default() }
    }

    /// Records the first decision about `action` for `incident`; false when
    /// another pass recorded one first.
    async fn first_decision(
        &self,
        action: &Action,
        incident: &Incident,
        context: &honeytrail_core::enrich::IncidentContext,
    ) -> Result<bool> {
        let now = Utc::now();
        let audited = |detail: &str| {
            self.store.audited(honeytrail_store::AuditRecord {
                actor: RUNNER.into(),
                action: "action.decide".into(),
                target: format!("incident #{}", incident.id),
                detail: Some(format!("{}: {detail}", action.name)),
                from: Some("honeytrail".into()),
            })
        };
        let target = match self.target(action, incident).await {
            Ok(t) => t,
            Err(why) => {
                let change = RunChange {
                    reason: Some(why.clone()),
                    ..self.change(format!("{} skipped: {why}", action.name), false)
                };
                return Ok(audited("skipped")
                    .create_run(action.id, incident.id, RunState::Skipped, "-", None, &change)
                    .await?
                    .is_some());
            }
        };
        let decision = decide(&action.trigger, context, incident.state, now, now);
        let label = &target.label;
        let (state, due, change) = match decision {
            Decision::Skip(why) => (
                RunState::Skipped,
                None,
                RunChange {
                    reason: Some(why.clone()),
                    ..self.change(format!("{} skipped: {why}", action.name), false)
                },
            ),
            Decision::WaitUntil(due) => (
                RunState::Waiting,
                Some(due),
                self.change(
                    format!(
                        "{} ({}) on {label} runs at {} unless the incident is marked false positive first",
                        action.name,
                        action.kind.as_str(),
                        due.format("%Y-%m-%d %H:%M:%SZ")
                    ),
                    false,
                ),
            ),
            Decision::AwaitApproval => (
                RunState::AwaitingApproval,
                None,
                self.change(
                    format!("{} ({}) on {label} waits for a responder's approval", action.name, action.kind.as_str()),
                    true,
                ),
            ),
            Decision::Run => (
                RunState::Queued,
                None,
                self.change(format!("{} ({}) on {label} queued", action.name, action.kind.as_str()), false),
            ),
            Decision::DryRun => {
                let created = audited("dry-run")
                    .create_run(
                        action.id,
                        incident.id,
                        RunState::Running,
                        label,
                        None,
                        &RunChange { actor: RUNNER.into(), ..Default::default() },
                    )
                    .await?;
                let Some(id) = created else { return Ok(false) };
                let run = self.store.action_run(id).await?;
                self.finish(&run, action, self.act(&run, action, &target, true).await).await?;
                return Ok(true);
            }
        };
        Ok(audited(state.as_str()).create_run(action.id, incident.id, state, label, due, &change).await?.is_some())
    }

    /// Moves a run on after a later decision.
    async fn apply_decision(
        &self,
        run: &ActionRun,
        action: &Action,
        decision: Decision,
        from: &[RunState],
    ) -> Result<()> {
        let (to, change) = match decision {
            Decision::Skip(why) => (
                RunState::Cancelled,
                RunChange {
                    reason: Some(why.clone()),
                    finished: true,
                    ..self.change(format!("{} not run: {why}", action.name), false)
                },
            ),
            Decision::WaitUntil(due) => {
                (RunState::Waiting, RunChange { due_at: Some(due), actor: RUNNER.into(), ..Default::default() })
            }
            Decision::AwaitApproval => (
                RunState::AwaitingApproval,
                self.change(format!("{} waits for a responder's approval", action.name), true),
            ),
            Decision::Run => (RunState::Queued, self.change(format!("{} queued", action.name), false)),
            Decision::DryRun => (RunState::Queued, self.change(format!("{} queued (dry run)", action.name), false)),
        };
        self.store.move_run(run.id, from, to, &change).await?;
        Ok(())
    }

    /// Runs a started run and records the result; true when it succeeded.
    async fn execute(&self, run: &ActionRun, action: &Action) -> Result<bool> {
        let incident = self.store.incident(run.incident_id).await?;
        let dry = action.trigger.mode == Mode::DryRun;
        let result = match self.target(action, &incident).await {
            Ok(target) => self.act(run, action, &target, dry).await,
            Err(why) => Err(why),
        };
        self.finish(run, action, result).await
    }

    async fn finish(&self, run: &ActionRun, action: &Action, result: Result<Outcome, String>) -> Result<bool> {
        let audited = |what: &str, detail: &str| {
            self.store.audited(honeytrail_store::AuditRecord {
                actor: RUNNER.into(),
                action: format!("action.{what}"),
                target: format!("action run #{} (incident #{})", run.id, run.incident_id),
                detail: Some(format!("{}: {}", action.name, quiet(detail, 300))),
                from: Some("honeytrail".into()),
            })
        };
        let dry = action.trigger.mode == Mode::DryRun;
        match result {
            Ok(o) => {
                let (to, note) = if dry {
                    (
                        RunState::DryRun,
                        format!("{} dry run on {}: would {}; nothing was changed", action.name, run.target, o.plan),
                    )
                } else {
                    (RunState::Done, format!("{} done on {}: {}", action.name, run.target, o.output))
                };
                let change = RunChange {
                    plan: Some(o.plan),
                    output: Some(o.output.clone()),
                    before_state: o.before.map(|b| serde_json::to_string(&b).expect("before-states serialise")),
                    finished: true,
                    ..self.change(note, !dry)
                };
                audited(to.as_str(), &o.output).move_run(run.id, &[RunState::Running], to, &change).await?;
                Ok(true)
            }
            Err(why) => {
                let note = format!("{} failed on {}: {why}", action.name, run.target);
                let change = RunChange { reason: Some(why.clone()), finished: true, ..self.change(note, true) };
                audited("failed", &why).move_run(run.id, &[RunState::Running], RunState::Failed, &change).await?;
                Ok(false)
            }
        }
    }

    /// What `action` acts on for `incident`: its own targets first, then
    /// those of the token's active placements; for AWS kinds also the
    /// account and the role to assume there. Err: why there is none.
    pub async fn target(&self, action: &Action, incident: &Incident) -> Result<Target, String> {
        let s = &action.settings;
        let placements = self
            .store
            .placements(&PlacementFilter { token_id: Some(incident.token_id), ..Default::default() })
            .await
            .map_err(|e| e.to_string())?;
        let spots: Vec<&honeytrail_core::Spot> =
            placements.iter().filter(|p| p.placement.removed_at.is_none()).map(|p| &p.placement.spot).collect();
        let (instance_id, principal, from_spot) = match action.kind {
            ActionKind::QuarantineEc2 => {
                let spot = spots.iter().find(|p| p.instance_id.is_some());
                let id = s.instance_id.clone().or_else(|| spot.and_then(|p| p.instance_id.clone())).ok_or_else(|| {
                    "no instance to quarantine: no placement of the key names one (placement add … --instance-id i-…) and the action names none".to_string()
                })?;
                (Some(id), None, spot.filter(|_| s.instance_id.is_none()).copied())
            }
            ActionKind::DeactivateKeys | ActionKind::DenyPolicy => {
                if let (ActionKind::DenyPolicy, Some(role)) = (action.kind, &s.iam_role) {
                    (None, Some(Principal::Role(role.clone())), None)
                } else {
                    let spot = spots.iter().find(|p| p.iam_user.is_some());
                    let user = s.iam_user.clone().or_else(|| spot.and_then(|p| p.iam_user.clone())).ok_or_else(|| {
                        "no IAM user to act on: no placement of the key names its owner's (placement add … --iam-user NAME) and the action names none".to_string()
                    })?;
                    (None, Some(Principal::User(user)), spot.filter(|_| s.iam_user.is_none()).copied())
                }
            }
            ActionKind::Webhook | ActionKind::Command => {
                return Ok(Target {
                    aws: None,
                    instance_id: None,
                    principal: None,
                    label: format!("incident #{}", incident.id),
                })
            }
        };
        let account = s
            .account
            .clone()
            .or_else(|| from_spot.and_then(|p| p.aws_account.clone()))
            .or_else(|| spots.iter().find_map(|p| p.aws_account.clone()))
            .or_else(|| s.role_arn.as_deref().and_then(honeytrail_aws::account_of_arn))
            .ok_or_else(|| {
                "no AWS account to act in: give the placement --aws-account or the action --account or --role-arn"
                    .to_string()
            })?;
        let role_arn = match &s.role_arn {
            Some(arn) => {
                let in_arn = honeytrail_aws::account_of_arn(arn).unwrap_or_default();
                if in_arn != account {
                    return Err(format!(
                        "the action's role {arn} is in account {in_arn}, but the target is in account {account}; actions run only through a role in the target's own account"
                    ));
                }
                arn.clone()
            }
            None => self.config.actions.roles.get(&account).cloned().ok_or_else(|| {
                format!("no role to assume in account {account}: set actions.roles.\"{account}\" in the config (or HONEYTRAIL_ACTIONS_ROLES) or give the action --role-arn; honeytrail never acts with its own credentials")
            })?,
        };
        let region = s.region.clone().or_else(|| self.config.aws.region.clone());
        let label = match (&instance_id, &principal) {
            (Some(i), _) => format!("instance {i} in {account}"),
            (None, Some(p)) => format!("{p} in {account}"),
            (None, None) => account.clone(),
        };
        Ok(Target { aws: Some(AwsTarget { account, role_arn, region }), instance_id, principal, label })
    }

    async fn responder(&self, target: &Target, run: &ActionRun) -> Result<Responder, String> {
        let aws = target.aws.as_ref().ok_or("not an AWS target")?;
        Responder::assume(
            &self.aws_settings(),
            &aws.role_arn,
            &format!("honeytrail-run-{}", run.id),
            aws.region.as_deref(),
        )
        .await
        .map_err(|e| e.message)
    }

    /// Does what the action does (or, `dry`, only reads what it would change).
    async fn act(&self, run: &ActionRun, action: &Action, target: &Target, dry: bool) -> Result<Outcome, String> {
        let fail = |e: ResponseError| e.message;
        match action.kind {
            ActionKind::QuarantineEc2 => {
                let r = self.responder(target, run).await?;
                let id = target.instance_id.as_deref().ok_or("no instance")?;
                let group =
                    action.settings.quarantine_group.clone().ok_or("no quarantine group (--quarantine-group)")?;
                let now = r.instance(id).await.map_err(fail)?.ok_or_else(|| instance_gone(id, &r.account).message)?;
                match r.group_vpc(&group).await.map_err(fail)? {
                    None => return Err(format!("the quarantine group {group} does not exist in account {}", r.account)),
                    Some(vpc) if vpc != now.vpc_id => {
                        return Err(format!(
                            "the quarantine group {group} is in {}, the instance in {}: a quarantine group is needed in the instance's VPC",
                            vpc.as_deref().unwrap_or("no VPC"),
                            now.vpc_id.as_deref().unwrap_or("no VPC")
                        ))
                    }
                    Some(_) => {}
                }
                let plan = format!("replace the security groups of {id} ({}) with {group}", now.groups.join(", "));
                if dry {
                    return Ok(Outcome { plan, output: "nothing changed (dry run)".into(), before: None });
                }
                if now.groups == [group.clone()] {
                    return Ok(Outcome {
                        plan,
                        output: format!("{id} already had only {group}; nothing changed"),
                        before: Some(Before::Groups {
                            instance_id: id.into(),
                            groups: now.groups,
                            quarantine_group: group,
                        }),
                    });
                }
                r.set_groups(id, std::slice::from_ref(&group)).await.map_err(fail)?;
                Ok(Outcome {
                    plan,
                    output: format!("{id} isolated: its groups {} were replaced with {group}", now.groups.join(", ")),
                    before: Some(Before::Groups {
                        instance_id: id.into(),
                        groups: now.groups,
                        quarantine_group: group,
                    }),
                })
            }
            ActionKind::DeactivateKeys => {
                let r = self.responder(target, run).await?;
                let Some(Principal::User(user)) = &target.principal else { return Err("no IAM user".into()) };
                let keys = r.keys(user).await.map_err(fail)?;
                let active: Vec<String> = keys.iter().filter(|k| k.active).map(|k| k.access_key_id.clone()).collect();
                let plan = if active.is_empty() {
                    format!("deactivate the active access keys of IAM user {user} (it has none)")
                } else {
                    format!("deactivate the access keys {} of IAM user {user}", active.join(", "))
                };
                if dry {
                    return Ok(Outcome { plan, output: "nothing changed (dry run)".into(), before: None });
                }
                let mut done = Vec::new();
                for key in &active {
                    if let Err(e) = r.set_key(user, key, false).await {
                        // Keep what was done, so undo can restore it.
                        return Err(format!(
                            "{}{}",
                            e.message,
                            if done.is_empty() {
                                String::new()
                            } else {
                                format!(" (after deactivating {}; reactivate them by hand)", done.join(", "))
                            }
                        ));
                    }
                    done.push(key.clone());
                }
                Ok(Outcome {
                    plan,
                    output: if done.is_empty() {
                        format!("IAM user {user} had no active access key; nothing changed")
                    } else {
                        format!("deactivated {} of IAM user {user}", done.join(", "))
                    },
                    before: Some(Before::Keys { user: user.clone(), deactivated: done }),
                })
            }
            ActionKind::DenyPolicy => {
                let r = self.responder(target, run).await?;
                let who = target.principal.clone().ok_or("no IAM principal")?;
                let policy = action.settings.policy_arn.clone().unwrap_or_else(|| DENY_ALL_POLICY_ARN.into());
                let attached = r.attached(&who).await.map_err(fail)?.contains(&policy);
                let plan = format!("attach {policy} to {who}");
                if dry {
                    return Ok(Outcome { plan, output: "nothing changed (dry run)".into(), before: None });
                }
                let before = Before::Policy {
                    principal: match &who {
                        Principal::User(n) | Principal::Role(n) => n.clone(),
                    },
                    role: matches!(who, Principal::Role(_)),
                    policy_arn: policy.clone(),
                    attached_before: attached,
                };
                if attached {
                    return Ok(Outcome {
                        plan,
                        output: format!("{policy} was already attached to {who}"),
                        before: Some(before),
                    });
                }
                r.set_policy(&who, &policy, true).await.map_err(fail)?;
                Ok(Outcome { plan, output: format!("attached {policy} to {who}"), before: Some(before) })
            }
            ActionKind::Webhook => self.call_webhook(run, action, dry).await,
            ActionKind::Command => self.run_command(run, action, dry).await,
        }
    }

    async fn run_record(&self, run: &ActionRun) -> Result<Vec<u8>, String> {
        let mut record = self.record(run.incident_id, "incident.action").await.map_err(|e| format!("{e:#}"))?;
        record.delivery_id = Some(format!("action-run-{}", run.id));
        Ok(serde_json::to_vec(&record).expect("records serialise"))
    }

    async fn call_webhook(&self, run: &ActionRun, action: &Action, dry: bool) -> Result<Outcome, String> {
        let sealed =
            self.store.action_secret(action.id).await.map_err(|e| e.to_string())?.ok_or("the webhook has no URL")?;
        let config: honeytrail_alert::channels::webhook::WebhookConfig = serde_json::from_str(sealed.expose())
            .map_err(|_| "the webhook's sealed settings cannot be read".to_string())?;
        let url = honeytrail_alert::target::check_action_url(&config.url, &self.config.alerts.allowed_hosts)
            .map_err(|f| f.message)?;
        let host = url.host_str().unwrap_or("?").to_string();
        let body = self.run_record(run).await?;
        let plan = format!("POST the incident record ({} bytes, signed) to {host}", body.len());
        if dry {
            return Ok(Outcome { plan, output: "nothing sent (dry run)".into(), before: None });
        }
        let timeout = StdDuration::from_secs(action.settings.timeout_seconds.unwrap_or(30));
        let client = honeytrail_alert::target::action_client(timeout, &self.config.alerts.allowed_hosts)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let sender = honeytrail_alert::Sender {
            client,
            allowed_hosts: self.config.alerts.allowed_hosts.clone(),
            files: crate::dispatch::Settings::from_config(&self.config).files,
        };
        honeytrail_alert::channels::webhook::deliver(&sender, &config, &format!("action-run-{}", run.id), &body)
            .await
            .map_err(|f| f.message)?;
        Ok(Outcome { plan, output: format!("the webhook at {host} accepted the record"), before: None })
    }

    async fn run_command(&self, run: &ActionRun, action: &Action, dry: bool) -> Result<Outcome, String> {
        let argv = &action.settings.command;
        let shown: Vec<String> = argv.iter().map(|a| quiet(a, 200)).collect();
        let plan = format!("run {} with the incident record on stdin", shown.join(" "));
        if dry {
            return Ok(Outcome { plan, output: "nothing run (dry run)".into(), before: None });
        }
        let body = self.run_record(run).await?;
        let timeout = StdDuration::from_secs(action.settings.timeout_seconds.unwrap_or(60));
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HONEYTRAIL_INCIDENT", run.incident_id.to_string())
            .env("HONEYTRAIL_ACTION", &action.name)
            .env("HONEYTRAIL_ACTION_RUN", run.id.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", shown[0]))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let feed = async move {
            use tokio::io::AsyncWriteExt;
            // A program that does not read its input is not an error.
            let _fed = stdin.write_all(&body).await.is_ok();
            drop(stdin);
        };
        let waited = tokio::time::timeout(timeout, async {
            let (_, out) = tokio::join!(feed, child.wait_with_output());
            out
        })
        .await;
        let out = match waited {
            Err(_) => return Err(format!("{} did not finish within {} s and was killed", shown[0], timeout.as_secs())),
            Ok(Err(e)) => return Err(format!("{} failed: {e}", shown[0])),
            Ok(Ok(out)) => out,
        };
        let text = |b: &[u8]| quiet(String::from_utf8_lossy(b).trim_end(), 8000);
        let output = format!(
            "{}{}",
            text(&out.stdout),
            if out.stderr.is_empty() { String::new() } else { format!("\n[stderr] {}", text(&out.stderr)) }
        );
        if !out.status.success() {
            return Err(format!(
                "{} exited with {}: {}",
                shown[0],
                out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into()),
                quiet(&output, 500)
            ));
        }
        Ok(Outcome {
            plan,
            output: if output.is_empty() { format!("{} exited 0", shown[0]) } else { output },
            before: None,
        })
    }

    /// Restores the state before a run, after checking that what it
    /// changed is still as it left it. Returns what happened; a run that
    /// cannot be restored becomes `undo-failed`, saying why.
    pub(crate) async fn undo_run(
        &self,
        store: &honeytrail_store::Store,
        run: &ActionRun,
        action: &Action,
        by: &str,
    ) -> Result<(RunState, String)> {
        let before: Option<Before> = run.before_state.as_deref().and_then(|b| serde_json::from_str(b).ok());
        let Some(before) = before else {
            anyhow::bail!("run #{} kept no previous state to restore", run.id);
        };
        let incident = self.store.incident(run.incident_id).await?;
        let result: Result<String, String> = async {
            let target = self.target(action, &incident).await?;
            let r = self.responder(&target, run).await?;
            let fail = |e: ResponseError| e.message;
            match before {
                Before::Groups { instance_id, groups, quarantine_group } => {
                    let now = r.instance(&instance_id).await.map_err(fail)?.ok_or_else(|| {
                        format!("instance {instance_id} is gone (terminated): nothing to restore; its groups were {}", groups.join(", "))
                    })?;
                    if now.groups != [quarantine_group.clone()] {
                        return Err(format!(
                            "the groups of {instance_id} were changed meanwhile (now {}; the quarantine left only {quarantine_group}): not restored, so that change is kept; its groups before were {}",
                            if now.groups.is_empty() { "none".to_string() } else { now.groups.join(", ") },
                            groups.join(", ")
                        ));
                    }
                    r.set_groups(&instance_id, &groups).await.map_err(fail)?;
                    let after = r.instance(&instance_id).await.map_err(fail)?.map(|i| i.groups).unwrap_or_default();
                    let mut want = groups.clone();
                    want.sort();
                    let mut got = after.clone();
                    got.sort();
                    if got != want {
                        return Err(format!("restoring {instance_id} left the groups {} instead of {}", after.join(", "), groups.join(", ")));
                    }
                    Ok(format!("{instance_id} has its groups {} back", groups.join(", ")))
                }
                Before::Keys { user, deactivated } => {
                    let now = r.keys(&user).await.map_err(fail)?;
                    let mut restored = Vec::new();
                    let mut problems = Vec::new();
                    for key in &deactivated {
                        match now.iter().find(|k| &k.access_key_id == key) {
                            None => problems.push(format!("{key} was deleted meanwhile")),
                            Some(k) if k.active => problems.push(format!("{key} was reactivated meanwhile")),
                            Some(_) => {
                                r.set_key(&user, key, true).await.map_err(fail)?;
                                restored.push(key.clone());
                            }
                        }
                    }
                    let done = if restored.is_empty() {
                        "no key reactivated".to_string()
                    } else {
                        format!("reactivated {} of IAM user {user}", restored.join(", "))
                    };
                    if problems.iter().any(|p| p.contains("deleted")) {
                        return Err(format!("{done}; {}", problems.join("; ")));
                    }
                    Ok(if problems.is_empty() { done } else { format!("{done}; {}", problems.join("; ")) })
                }
                Before::Policy { principal, role, policy_arn, attached_before } => {
                    let who = if role { Principal::Role(principal) } else { Principal::User(principal) };
                    if attached_before {
                        return Ok(format!("{policy_arn} was attached to {who} before the action: left attached"));
                    }
                    if !r.attached(&who).await.map_err(fail)?.contains(&policy_arn) {
                        return Ok(format!("{policy_arn} was detached from {who} meanwhile: the state before is already back"));
                    }
                    r.set_policy(&who, &policy_arn, false).await.map_err(fail)?;
                    Ok(format!("detached {policy_arn} from {who}"))
                }
            }
        }
        .await;
        let (to, text) = match result {
            Ok(done) => (RunState::Undone, done),
            Err(why) => (RunState::UndoFailed, why),
        };
        let note = match to {
            RunState::Undone => format!("{} undone by {by}: {text}", action.name),
            _ => format!("{} could not be undone ({by} asked): {text}", action.name),
        };
        let change = RunChange {
            reason: (to == RunState::UndoFailed).then(|| text.clone()),
            output: Some(text.clone()),
            undone_by: Some(by.to_string()),
            note: Some(note),
            actor: by.to_string(),
            alert: true,
            ..Default::default()
        };
        if !store.move_run(run.id, &[RunState::Done, RunState::UndoFailed], to, &change).await? {
            anyhow::bail!("run #{} changed meanwhile; look again", run.id);
        }
        Ok((to, text))
    }
}
