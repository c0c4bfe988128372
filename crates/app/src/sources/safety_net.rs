//! The safety net: calls CloudTrail never logs.
//!
//! IAM tracks each key's last use (`GetAccessKeyLastUsed`) for calls that
//! CloudTrail does not record. A newer last use with no CloudTrail event to
//! explain it, once CloudTrail has had time to deliver (the grace period),
//! opens an incident that says so.

use anyhow::Result;
use chrono::{Duration, Utc};
use honeytrail_core::incident::TokenEvent;
use honeytrail_store::{ReportedUse, TokenFilter};
use serde_json::json;

use super::{Sink, Source};
use crate::Ops;

pub struct SafetyNet {
    ops: Ops,
    grace: Duration,
    /// Keys checked in the last pass, and the ones that could not be.
    pub checked: usize,
    pub failures: Vec<String>,
    /// Unlogged uses raised in the last pass.
    pub raised: usize,
}

impl SafetyNet {
    pub fn new(ops: &Ops, grace: Duration) -> SafetyNet {
        SafetyNet { ops: ops.clone(), grace, checked: 0, failures: Vec::new(), raised: 0 }
    }
}

impl Source for SafetyNet {
    fn describe(&self) -> String {
        "iam:GetAccessKeyLastUsed".into()
    }

    async fn pass(&mut self, sink: &mut Sink) -> Result<bool> {
        let store = self.ops.store.clone();
        // Each key is asked of the account that holds it: the pool's, or the
        // configured account (the last) for keys minted before the pool.
        let accounts = self.ops.every_account().await?;
        let window = Duration::minutes(self.ops.config.detect.window_minutes as i64);
        let tokens = store.list_tokens(&TokenFilter::active_minted()).await?;
        (self.checked, self.raised) = (0, 0);
        self.failures.clear();
        for token in &tokens {
            let account = accounts
                .iter()
                .find(|(id, _)| id.is_some() && *id == token.account_id)
                .or(accounts.last())
                .map(|(_, c)| c)
                .expect("the configured account is always there");
            let reported = match account.last_used(&token.access_key_id).await {
                Ok(r) => r,
                Err(e) => {
                    self.failures.push(format!("{}: {e}", token.access_key_id));
                    continue;
                }
            };
            self.checked += 1;
            let now = Utc::now();
            let known = store.reported_use(token.id).await?;
            let mut current = match (reported, known) {
                (Some(r), Some(k)) if r.at <= k.at => k,
                (Some(r), _) => {
                    ReportedUse { at: r.at, service: r.service, region: r.region, noticed_at: now, pending: true }
                }
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
                let event = unlogged_event(token.id, &token.access_key_id, &current, self.grace);
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

fn unlogged_event(token_id: i64, key: &str, u: &ReportedUse, grace: Duration) -> TokenEvent {
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
        origin: "iam:GetAccessKeyLastUsed".into(),
        raw: json!({"lastUsedDate": u.at, "serviceName": u.service, "region": u.region}).to_string(),
    }
}
