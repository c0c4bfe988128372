//! canarytokens.org webhook alerts, for keys imported from canarytokens.org.
//!
//! The webhook payload carries the canarytoken's manage URL (whose `token`
//! parameter identifies it), the memo, the channel, the time (UTC) and
//! `additional_data` with the caller's IP and user agent. An imported token
//! is matched by its `canarytoken` label.

use chrono::Utc;
use honeytrail_core::incident::TokenEvent;
use honeytrail_core::Token;
use serde_json::Value;

use crate::record::parse_event_time;

/// The canarytoken ID of a webhook payload: its `token` field, or the
/// `token` parameter of its manage URL.
pub fn token_id(payload: &Value) -> Option<String> {
    if let Some(t) = payload.get("token").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let url = payload.get("manage_url").and_then(Value::as_str)?;
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string)
}

/// Turns a webhook payload into an event of the imported token it belongs to.
pub fn to_event(payload: &Value, tokens: &[Token]) -> Option<TokenEvent> {
    let id = token_id(payload)?;
    let token = tokens.iter().find(|t| t.labels.get("canarytoken") == Some(&id))?;
    let extra = payload.get("additional_data").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let time_text = text(payload, "time").unwrap_or_default();
    // canarytokens.org writes "2020-06-09 14:04:39" (UTC), sometimes with " (UTC)".
    let event_time = parse_event_time(time_text.trim_end_matches(" (UTC)")).unwrap_or_else(Utc::now);
    let source_ip = text(payload, "src_ip").or_else(|| text(&extra, "src_ip"));
    let aws = extra.get("aws_key_log_data").cloned().unwrap_or(Value::Null);
    let first = |v: &Value, k: &str| match v.get(k) {
        Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Some(TokenEvent {
        event_id: format!("canarytokens:{id}:{}", event_time.timestamp_millis()),
        token_id: token.id,
        event_time,
        event_source: first(&aws, "eventSource").unwrap_or_else(|| "canarytokens.org".into()),
        event_name: first(&aws, "eventName").unwrap_or_else(|| {
            format!("canarytoken alert ({})", text(payload, "channel").unwrap_or_else(|| "unknown channel".into()))
        }),
        aws_region: first(&aws, "awsRegion"),
        source_ip,
        user_agent: text(payload, "useragent")
            .or_else(|| text(&extra, "useragent"))
            .or_else(|| first(&aws, "userAgent")),
        error_code: None,
        error_message: None,
        access_key_id: Some(token.access_key_id.clone()),
        principal_arn: None,
        vpc_endpoint: None,
        vpc_endpoint_account: None,
        source: "canarytokens".into(),
        origin: "canarytokens.org webhook".into(),
        raw: payload.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_from_field_or_manage_url() {
        let a = serde_json::json!({"token": "abc123"});
        assert_eq!(token_id(&a).as_deref(), Some("abc123"));
        let b = serde_json::json!({"manage_url": "https://canarytokens.org/manage?token=xyz789&auth=secret"});
        assert_eq!(token_id(&b).as_deref(), Some("xyz789"));
        assert_eq!(token_id(&serde_json::json!({"memo": "m"})), None);
    }
}
