//! The safety net: calls CloudTrail never logs.
//!
//! IAM tracks each key's last use for calls that CloudTrail does not
//! record; the safety net reads it per key (`GetAccessKeyLastUsed`) or for
//! every key at once (the credential report), as configured. A newer last use with no CloudTrail event to
//! explain it, once CloudTrail has had time to deliver (the grace period),
//! opens an incident that says so.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{Duration, Utc};
use honeytrail_aws::{LastUsed, ReportedKey};
use honeytrail_core::incident::TokenEvent;
use honeytrail_store::{ReportedUse, TokenFilter};
use serde_json::json;

use super::{Sink, Source};
use crate::config::SafetyNetMethod;
use crate::Ops;

pub struct SafetyNet {
    ops: Ops,
    grace: Duration,
    methods: Vec<SafetyNetMethod>,
    /// Keys checked in the last pass, and the ones that could not be.
    pub checked: usize,
    pub failures: Vec<String>,
    /// Unlogged uses raised in the last pass.
    pub raised: usize,
    /// Credential reports read in the last pass.
    pub reports: usize,
}

impl SafetyNet {
    /// The safety net with the configured methods (`detect.safety_net_methods`).
    pub fn new(ops: &Ops, grace: Duration) -> SafetyNet {
        let methods = ops.config.detect.safety_net_methods.clone();
        SafetyNet::with_methods(ops, grace, methods)
    }

    pub fn with_methods(ops: &Ops, grace: Duration, methods: Vec<SafetyNetMethod>) -> SafetyNet {
        SafetyNet { ops: ops.clone(), grace, methods, checked: 0, failures: Vec::new(), raised: 0, reports: 0 }
    }

    /// What one pass asks of IAM, for messages.
    pub fn methods(&self) -> String {
        let names: Vec<&str> = self
            .methods
            .iter()
            .map(|m| match m {
                SafetyNetMethod::LastUsed => "iam:GetAccessKeyLastUsed",
                SafetyNetMethod::CredentialReport => "iam:GetCredentialReport",
            })
            .collect();
        names.join(" + ")
    }
}

/// Each account's credential report: user name → the user's two keys.
type Reports = BTreeMap<usize, BTreeMap<String, [ReportedKey; 2]>>;

impl Source for SafetyNet {
    fn describe(&self) -> String {
        self.methods()
    }

    async fn pass(&mut self, sink: &mut Sink) -> Result<bool> {
        let store = self.ops.store.clone();
        (self.checked, self.raised, self.reports) = (0, 0, 0);
        self.failures.clear();
        if self.methods.is_empty() {
            anyhow::bail!("the safety net has no method: set detect.safety_net_methods to \"last-used\", \"credential-report\" or both");
        }
        let tokens = store.list_tokens(&TokenFilter::active_minted()).await?;
        if tokens.is_empty() {
            return Ok(false);
        }
        // Each key is asked of the account that holds it: the pool's, or the
        // configured account (the last) for keys minted before the pool.
        let accounts = self.ops.every_account().await?;
        let account_of = |token: &honeytrail_core::Token| {
            accounts.iter().position(|(id, _)| id.is_some() && *id == token.account_id).unwrap_or(accounts.len() - 1)
        };
        let reports = match self.methods.contains(&SafetyNetMethod::CredentialReport) {
            true => self.reports(&accounts, tokens.iter().map(account_of).collect()).await,
            false => Reports::new(),
        };
        // A user holding more than one of our keys cannot be told apart in
        // the report (it names users, not keys); those keys are left to
        // GetAccessKeyLastUsed.
        let mut holders: BTreeMap<(usize, &str), usize> = BTreeMap::new();
        for t in &tokens {
            if let Some(user) = t.iam_user_name.as_deref() {
                *holders.entry((account_of(t), user)).or_default() += 1;
            }
        }
        let window = Duration::minutes(self.ops.config.detect.window_minutes as i64);
        for token in &tokens {
            let at = account_of(token);
            let account = &accounts[at].1;
            let mut answered = false;
            let mut seen: Option<(LastUsed, &'static str)> = None;
            let mut newer = |u: LastUsed, origin: &'static str| {
                if seen.as_ref().is_none_or(|(s, _)| u.at > s.at) {
                    seen = Some((u, origin));
                }
            };
            if self.methods.contains(&SafetyNetMethod::LastUsed) {
                match account.last_used(&token.access_key_id).await {
                    Ok(r) => {
                        answered = true;
                        if let Some(u) = r {
                            newer(u, "iam:GetAccessKeyLastUsed");
                        }
                    }
                    Err(e) => self.failures.push(format!("{}: {e}", token.access_key_id)),
                }
            }
            if let (Some(users), Some(user)) = (reports.get(&at), token.iam_user_name.as_deref()) {
                if holders.get(&(at, user)) == Some(&1) {
                    answered = true;
                    let keys = users.get(user).map(|k| k.iter().filter_map(|k| k.last_used.clone()).collect());
                    for u in keys.unwrap_or_else(Vec::new) {
                        newer(u, "iam:GetCredentialReport");
                    }
                }
            }
            if !answered {
                continue;
            }
            self.checked += 1;
            let now = Utc::now();
            let known = store.reported_use(token.id).await?;
            let (mut current, origin) = match (seen, known) {
                (Some((r, _)), Some(k)) if r.at <= k.at => (k, "iam"),
                (Some((r, origin)), _) => (
                    ReportedUse { at: r.at, service: r.service, region: r.region, noticed_at: now, pending: true },
                    origin,
                ),
                (None, _) => continue,
            };
            if !current.pending {
                continue;
            }
            // IAM's last-use time is coarse; any CloudTrail event of this token
            // near or after it explains the use.
            if store.has_event_since(token.id, current.at - window).await? {
                current.pending = false;
            } else if now - current.noticed_at >= self.grace {
                let event = unlogged_event(token.id, &token.access_key_id, &current, self.grace, origin);
                let duplicates = sink.duplicates;
                sink.add(&[event]).await?;
                if sink.duplicates == duplicates {
                    self.raised += 1;
                }
                current.pending = false;
            }
            store.set_reported_use(token.id, &current).await?;
        }
        Ok(self.raised > 0)
    }
}

impl SafetyNet {
    /// The credential report of each account in `wanted` (indices into
    /// `accounts`); an account whose report fails or is not ready yet is
    /// left out (and named in `failures` when it failed).
    async fn reports(
        &mut self,
        accounts: &[(Option<String>, honeytrail_aws::CanaryAccount)],
        wanted: std::collections::BTreeSet<usize>,
    ) -> Reports {
        let mut reports = Reports::new();
        for at in wanted {
            let (id, account) = &accounts[at];
            let named = id.as_deref().unwrap_or("the configured account");
            match account.credential_report().await {
                Ok(Some(report)) => {
                    self.reports += 1;
                    reports.insert(at, report.users);
                }
                Ok(None) => {
                    tracing::info!(account = named, "IAM is still making the credential report; the next pass reads it")
                }
                Err(e) => self.failures.push(format!("the credential report of {named}: {e}")),
            }
        }
        reports
    }
}

fn unlogged_event(token_id: i64, key: &str, u: &ReportedUse, grace: Duration, origin: &str) -> TokenEvent {
    let service = (u.service != "N/A" && !u.service.is_empty()).then(|| format!("{}.amazonaws.com", u.service));
    TokenEvent {
        event_id: format!("safety-net:{key}:{}", u.at.timestamp_millis()),
        token_id,
        event_time: u.at,
        event_source: service.unwrap_or_else(|| "unknown".into()),
        event_name: "call not logged by CloudTrail".into(),
        aws_region: (u.region != "N/A" && !u.region.is_empty()).then(|| u.region.clone()),
        source_ip: None,
        user_agent: None,
        error_code: None,
        // What happened, in the incident: the grace passed without a record.
        error_message: Some(format!(
            "IAM reports a use of this key at {} ({}, {}), and no CloudTrail record of it arrived within the {}-minute grace: a call CloudTrail does not log, or a log file later than that",
            u.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if u.service.is_empty() { "N/A" } else { &u.service },
            if u.region.is_empty() { "N/A" } else { &u.region },
            grace.num_minutes()
        )),
        access_key_id: Some(key.to_string()),
        principal_arn: None,
        vpc_endpoint: None,
        vpc_endpoint_account: None,
        source: "safety-net".into(),
        origin: origin.into(),
        raw: json!({"lastUsedDate": u.at, "serviceName": u.service, "region": u.region}).to_string(),
    }
}
