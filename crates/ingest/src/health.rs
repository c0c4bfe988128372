//! AWS's own finding that a key was published: an AWS Health event of type
//! `AWS_RISK_CREDENTIALS_EXPOSED`, which AWS sends when it finds an access
//! key on a public repository or paste site (and attaches its quarantine
//! policy to the user). It names the key among its affected entities and
//! says where it was found in its description. For a honey key this is an
//! incident of its own kind: "exposed publicly".

use chrono::{DateTime, Utc};
use honeytrail_core::incident::{TokenEvent, EXPOSED_EVENT, HEALTH_SOURCE};
use serde_json::Value;

use crate::index::KeyIndex;
use crate::record::parse_event_time;

/// The largest document read as AWS Health findings: an EventBridge event is
/// at most 256 KB. A CloudTrail log file whose request data merely names the
/// event type (anyone can write it into a user agent) is not parsed whole for it.
pub const MAX_FINDINGS_BYTES: usize = 1 << 20;

/// Whether a document may be an AWS Health exposure event (cheap, before
/// parsing). A CloudTrail log file (`{"Records": [...]}`) never holds one,
/// so it costs nothing here; for the rest the event type, absent from
/// almost every document, is looked for first, so most cost one pass.
pub fn may_be_exposure(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_FINDINGS_BYTES
        && !is_log_file(bytes)
        && memchr::memmem::find(bytes, EXPOSED_EVENT.as_bytes()).is_some()
        && (memchr::memmem::find(bytes, b"aws.health").is_some()
            || memchr::memmem::find(bytes, b"arn:aws:health:").is_some())
}

/// Whether `bytes` is a CloudTrail log file: an object whose first member
/// is `"Records"`.
fn is_log_file(bytes: &[u8]) -> bool {
    let rest = bytes.trim_ascii_start();
    rest.strip_prefix(b"{").is_some_and(|r| r.trim_ascii_start().starts_with(b"\"Records\""))
}

/// The events of the honey keys an AWS Health exposure finding names; none
/// when the value is anything else. Accepts the EventBridge envelope
/// (`{"source": "aws.health", "detail": {…}}`) or the bare `detail`.
pub fn exposures(value: &Value, index: &KeyIndex, source: &str, origin: &str, seen: DateTime<Utc>) -> Vec<TokenEvent> {
    let detail = if value.get("source").and_then(Value::as_str) == Some("aws.health") {
        match value.get("detail") {
            Some(d) => d,
            None => return Vec::new(),
        }
    } else {
        value
    };
    if detail.get("eventTypeCode").and_then(Value::as_str) != Some(EXPOSED_EVENT) {
        return Vec::new();
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let description = detail
        .get("eventDescription")
        .and_then(Value::as_array)
        .and_then(|d| d.iter().find_map(|e| text(e.get("latestDescription"))));
    let time = text(detail.get("startTime"))
        .or_else(|| text(value.get("time")))
        .as_deref()
        .and_then(parse_event_time)
        .unwrap_or(seen);
    let finding = text(detail.get("eventArn")).or_else(|| text(value.get("id"))).unwrap_or_default();
    let region = text(value.get("region")).or_else(|| text(detail.get("eventRegion")));
    // Affected entities hold the key ID; older events name it in resources.
    let mut keys: Vec<String> = detail
        .get("affectedEntities")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| text(e.get("entityValue"))).collect())
        .unwrap_or_default();
    if let Some(resources) = value.get("resources").and_then(Value::as_array) {
        keys.extend(resources.iter().filter_map(|r| text(Some(r))));
    }
    keys.sort();
    keys.dedup();
    keys.iter()
        .filter_map(|key| {
            let token = index.get(key.as_bytes())?;
            Some(TokenEvent {
                event_id: format!("health-{finding}-{key}"),
                token_id: token.token_id,
                event_time: time,
                event_source: HEALTH_SOURCE.into(),
                event_name: EXPOSED_EVENT.into(),
                aws_region: region.clone(),
                source_ip: None,
                user_agent: None,
                error_code: None,
                // Where AWS found it, in AWS's words.
                error_message: description.clone(),
                access_key_id: Some(key.clone()),
                principal_arn: None,
                vpc_endpoint: None,
                vpc_endpoint_account: None,
                source: source.to_string(),
                origin: origin.to_string(),
                raw: value.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TokenRef;
    use honeytrail_core::incident::IncidentKind;

    /// The shape AWS documents for the event (EventBridge, `aws.health`).
    pub const EXPOSED: &str = r#"{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","time":"2026-11-28T06:27:57Z","region":"us-east-1","resources":[],"detail":{"eventArn":"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_XXXXXXXX","service":"RISK","eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED","eventTypeCategory":"issue","startTime":"Sat, 28 Nov 2026 06:27:57 GMT","eventDescription":[{"language":"en_US","latestDescription":"Your AWS Access Key AKIARZPUZDIKAWS2LJNF belonging to IAM user svc-backup is exposed publicly on https://github.com/example/repo/blob/main/.env"}],"affectedEntities":[{"entityValue":"AKIARZPUZDIKAWS2LJNF"}]}}"#;

    #[test]
    fn an_exposure_finding_names_the_key_and_where_it_was_found() {
        let mut index = KeyIndex::new();
        index.insert(TokenRef { token_id: 9, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
        assert!(may_be_exposure(EXPOSED.as_bytes()));
        let log_file =
            format!(r#"{{"Records":[{{"userAgent":"aws.health {EXPOSED_EVENT}","p":"{}"}}]}}"#, "x".repeat(2 << 20));
        assert!(!may_be_exposure(log_file.as_bytes()), "a big log file naming it is not parsed whole for it");
        let small = format!(r#" {{ "Records":[{{"userAgent":"aws.health {EXPOSED_EVENT}"}}]}}"#);
        assert!(!may_be_exposure(small.as_bytes()), "nor a small one: Health events are never in a log file");
        assert!(may_be_exposure(format!("[{EXPOSED}]").as_bytes()), "an array of events is read");
        let bare = &EXPOSED[EXPOSED.find(r#""detail":"#).unwrap() + 9..EXPOSED.len() - 1];
        assert!(may_be_exposure(bare.as_bytes()), "nor is the bare detail missed: {bare}");
        let v: Value = serde_json::from_str(EXPOSED).unwrap();
        let events = exposures(&v, &index, "eventbridge-http", "x", Utc::now());
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!((e.token_id, e.incident_kind()), (9, IncidentKind::Exposed));
        assert!(e.error_message.as_deref().unwrap().contains("github.com/example/repo"));
        assert_eq!(e.event_time.to_rfc3339(), "2026-11-28T06:27:57+00:00");
        // The same finding for a key that is not ours, or another Health event: nothing.
        let other = EXPOSED.replace("AKIARZPUZDIKAWS2LJNF", "AKIAOTHEROTHEROTHER1");
        assert!(exposures(&serde_json::from_str(&other).unwrap(), &index, "s", "o", Utc::now()).is_empty());
        let scheduled = EXPOSED
            .replace("\"eventTypeCode\":\"AWS_RISK_CREDENTIALS_EXPOSED\"", "\"eventTypeCode\":\"AWS_EC2_MAINTENANCE\"");
        assert!(exposures(&serde_json::from_str(&scheduled).unwrap(), &index, "s", "o", Utc::now()).is_empty());
    }
}
