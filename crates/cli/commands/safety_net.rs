//! `honeytrail safety-net`: catch calls CloudTrail never logs.
//!
//! IAM tracks each key's last use (`GetAccessKeyLastUsed`) for calls that
//! CloudTrail does not record. A newer last use with no CloudTrail event to
//! explain it, once CloudTrail has had time to deliver (the grace period),
//! opens an incident that says so.

use std::process::ExitCode;

use anyhow::Result;
use chrono::{Duration, Utc};
use clap::Args;
use honeytrail_core::incident::TokenEvent;
use honeytrail_store::{EventOutcome, ReportedUse, TokenFilter};
use serde_json::json;

use super::incident::incident_record;
use crate::app::App;

#[derive(Args, Debug)]
pub struct SafetyNetArgs {
    /// Minutes to wait for CloudTrail before calling a use unlogged [default: detect.safety_net_grace_minutes]
    #[arg(long)]
    grace_minutes: Option<u32>,
}

pub async fn run(app: &App, args: SafetyNetArgs) -> Result<ExitCode> {
    let store = app.store().await?;
    let account = app.canary_account().await;
    let grace = Duration::minutes(args.grace_minutes.unwrap_or(app.config.detect.safety_net_grace_minutes) as i64);
    let window = Duration::minutes(app.config.detect.window_minutes as i64);
    let tokens = store.list_tokens(&TokenFilter::active_minted()).await?;
    let (mut checked, mut failures, mut opened) = (0, Vec::new(), Vec::new());
    for token in &tokens {
        let reported = match account.last_used(&token.access_key_id).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e}", token.access_key_id));
                continue;
            }
        };
        checked += 1;
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
        } else if now - current.noticed_at >= grace {
            let event = unlogged_event(token.id, &token.access_key_id, &current);
            if let EventOutcome::Opened(id) | EventOutcome::Joined(id) = store.record_event(&event, window).await? {
                opened.push(id);
            }
            current.pending = false;
        }
        store.set_reported_use(token.id, &current).await?;
    }
    for id in &opened {
        println!("{}", serde_json::to_string(&incident_record(&store, *id, "incident.opened").await?)?);
    }
    eprintln!("safety net: checked {checked} minted key(s); {} unlogged use(s) raised", opened.len());
    for f in &failures {
        eprintln!("warning: could not check {f}");
    }
    Ok(if failures.is_empty() || checked > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn unlogged_event(token_id: i64, key: &str, u: &ReportedUse) -> TokenEvent {
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
        error_message: None,
        access_key_id: Some(key.to_string()),
        principal_arn: None,
        source: "safety-net".into(),
        origin: "iam:GetAccessKeyLastUsed".into(),
        raw: json!({"lastUsedDate": u.at, "serviceName": u.service, "region": u.region}).to_string(),
    }
}
