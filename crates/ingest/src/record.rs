//! CloudTrail documents in every shape they arrive in, and the records in them.

use chrono::{DateTime, NaiveDateTime, Utc};
use honeytrail_core::incident::TokenEvent;
use serde_json::Value;

use crate::index::{KeyIndex, TokenRef};
use crate::SkipReason;

/// Splits a parsed document into CloudTrail records.
///
/// Accepts an S3 log file (`{"Records": [...]}`), a bare array of events, an
/// EventBridge envelope (`{"detail-type": ..., "detail": {...}}`) and a single
/// event. Digest files and other JSON are refused with the reason.
pub fn records_of(doc: Value) -> Result<Vec<Value>, SkipReason> {
    match doc {
        Value::Object(mut map) => {
            if let Some(records) = map.remove("Records") {
                return match records {
                    Value::Array(items) => Ok(items),
                    _ => Err(SkipReason::NotCloudTrail("\"Records\" is not an array".into())),
                };
            }
            if map.contains_key("digestStartTime") || map.contains_key("digestPublicKeyFingerprint") {
                return Err(SkipReason::Digest);
            }
            if map.contains_key("detail-type") {
                return match map.remove("detail") {
                    Some(detail @ Value::Object(_)) => Ok(vec![detail]),
                    _ => Err(SkipReason::NotCloudTrail("EventBridge event without a detail object".into())),
                };
            }
            if map.contains_key("eventVersion") || map.contains_key("eventID") {
                return Ok(vec![Value::Object(map)]);
            }
            Err(SkipReason::NotCloudTrail("a JSON object without Records, eventVersion or detail".into()))
        }
        Value::Array(items) => Ok(items.into_iter().map(unwrap_envelope).collect()),
        _ => Err(SkipReason::NotCloudTrail("neither a JSON object nor an array".into())),
    }
}

/// The CloudTrail record an EventBridge envelope carries (its `detail`);
/// anything else as it is.
pub fn unwrap_envelope(value: Value) -> Value {
    match value {
        Value::Object(mut map)
            if map.contains_key("detail-type") && map.get("detail").is_some_and(Value::is_object) =>
        {
            map.remove("detail").unwrap_or_default()
        }
        other => other,
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// The token a record's caller identity belongs to, if any.
///
/// Only `userIdentity` counts: a key ID in `requestParameters` or
/// `responseElements` (an administrator creating the honey key) is not a use.
/// Sessions derived from a honey identity count as its use: a federated user
/// made with `GetFederationToken`, a role session, any session whose
/// `sessionContext.sessionIssuer` is the honey user or role.
/// Key IDs are not validated: real and pseudonymised logs hold IDs outside
/// the base32 alphabet.
pub fn match_record(record: &Value, index: &KeyIndex) -> Option<TokenRef> {
    let identity = record.get("userIdentity")?;
    match_identity(identity, index)
        .or_else(|| identity.pointer("/sessionContext/sessionIssuer").and_then(|issuer| match_identity(issuer, index)))
}

fn match_identity(identity: &Value, index: &KeyIndex) -> Option<TokenRef> {
    if let Some(key) = text(identity, &["accessKeyId"]) {
        if let Some(t) = index.get(key.as_bytes()) {
            return Some(t);
        }
    }
    if let Some(arn) = text(identity, &["arn"]) {
        if let Some(t) = index.get(arn.as_bytes()) {
            return Some(t);
        }
    }
    match (text(identity, &["accountId"]), text(identity, &["userName"])) {
        (Some(account), Some(user)) => index.get(format!("{account}/{user}").as_bytes()),
        _ => None,
    }
}

/// Raw text kept of a record that could not be parsed.
const SALVAGED_RAW_MAX: usize = 256 * 1024;

/// The event of a record that cannot be parsed, read field by field: the
/// token from the hits inside it, the rest as far as it can be read. Its ID
/// is derived from its bytes, never taken from the record: a forged
/// `eventID` must not make it look like an event already stored.
pub fn salvage(
    span: &[u8],
    hits: &[(usize, String)],
    index: &KeyIndex,
    source: &str,
    origin: &str,
    seen: DateTime<Utc>,
) -> Option<TokenEvent> {
    let field = |name: &str| crate::lenient::field(span, name);
    let account = field("accountId");
    let token = hits.iter().find_map(|(_, id)| {
        index.get(id.as_bytes()).or_else(|| account.as_ref().and_then(|a| index.get(format!("{a}/{id}").as_bytes())))
    })?;
    let mut raw = String::from_utf8_lossy(&span[..span.len().min(SALVAGED_RAW_MAX)]).into_owned();
    if span.len() > SALVAGED_RAW_MAX {
        raw.push_str("…[cut by honeytrail]");
    }
    Some(TokenEvent {
        event_id: format!("unparsed-{:016x}", fnv1a(span)),
        token_id: token.token_id,
        event_time: field("eventTime").as_deref().and_then(parse_event_time).unwrap_or(seen),
        event_source: field("eventSource").unwrap_or_else(|| "unknown".into()),
        event_name: field("eventName").unwrap_or_else(|| "unknown".into()),
        aws_region: field("awsRegion"),
        source_ip: field("sourceIPAddress"),
        user_agent: field("userAgent"),
        error_code: field("errorCode"),
        error_message: field("errorMessage"),
        access_key_id: field("accessKeyId"),
        principal_arn: field("arn"),
        vpc_endpoint: field("vpcEndpointId"),
        vpc_endpoint_account: field("vpcEndpointAccountId"),
        source: source.to_string(),
        origin: origin.to_string(),
        raw,
    })
}

/// Parses CloudTrail's `eventTime`, and the `2023-01-10 21:04:02` form some
/// tools write.
pub fn parse_event_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    // AWS Health writes `Sat, 28 Nov 2026 06:27:57 GMT`.
    if let Ok(t) = DateTime::parse_from_rfc2822(raw) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// FNV-1a, for a stable ID of a record that lacks `eventID`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Builds the stored event from a matched record.
pub fn to_event(record: &Value, token: TokenRef, source: &str, origin: &str, seen: DateTime<Utc>) -> TokenEvent {
    let raw = record.to_string();
    let event_id = match text(record, &["eventID"]) {
        Some(id) => id.to_string(),
        None => format!("synthetic-{:016x}", fnv1a(raw.as_bytes())),
    };
    let event_time = text(record, &["eventTime"]).and_then(parse_event_time).unwrap_or(seen);
    let own = |path: &[&str]| text(record, path).map(str::to_string);
    TokenEvent {
        event_id,
        token_id: token.token_id,
        event_time,
        event_source: own(&["eventSource"]).unwrap_or_else(|| "unknown".into()),
        event_name: own(&["eventName"]).unwrap_or_else(|| "unknown".into()),
        aws_region: own(&["awsRegion"]),
        source_ip: own(&["sourceIPAddress"]),
        user_agent: own(&["userAgent"]),
        error_code: own(&["errorCode"]),
        error_message: own(&["errorMessage"]),
        access_key_id: own(&["userIdentity", "accessKeyId"]),
        principal_arn: own(&["userIdentity", "arn"]),
        vpc_endpoint: own(&["vpcEndpointId"]),
        vpc_endpoint_account: own(&["vpcEndpointAccountId"]),
        source: source.to_string(),
        origin: origin.to_string(),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(records_of(json!({"Records": [{"eventVersion": "1.08"}, {}]})).unwrap().len(), 2);
        assert_eq!(records_of(json!([{"eventVersion": "1.08"}])).unwrap().len(), 1);
        let eb = json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"eventID": "x"}});
        assert_eq!(records_of(eb).unwrap()[0]["eventID"], "x");
        assert_eq!(records_of(json!({"digestStartTime": "2023"})), Err(SkipReason::Digest));
        assert!(matches!(records_of(json!({"hello": 1})), Err(SkipReason::NotCloudTrail(_))));
    }

    #[test]
    fn only_the_caller_identity_matches() {
        let mut index = KeyIndex::new();
        index.insert(
            TokenRef { token_id: 3, retired: false },
            "AKIARZPUZDIKAWS2LJNF",
            None,
            Some(("123456789012", "svc-a")),
        );
        let created = json!({"userIdentity": {"accessKeyId": "AKIAADMINADMINADMIN1"}, "responseElements": {"accessKey": {"accessKeyId": "AKIARZPUZDIKAWS2LJNF"}}});
        assert_eq!(match_record(&created, &index), None);
        let used = json!({"userIdentity": {"accessKeyId": "AKIARZPUZDIKAWS2LJNF"}});
        assert_eq!(match_record(&used, &index).unwrap().token_id, 3);
        let by_name = json!({"userIdentity": {"type": "IAMUser", "accountId": "123456789012", "userName": "svc-a"}});
        assert_eq!(match_record(&by_name, &index).unwrap().token_id, 3);
        assert_eq!(match_record(&json!({"eventType": "AwsCloudTrailInsight"}), &index), None);
    }

    #[test]
    fn event_fields_and_times() {
        let rec = json!({"eventID": "e1", "eventTime": "2023-07-10T11:42:36Z", "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2", "errorCode": "AccessDenied",
            "userIdentity": {"accessKeyId": "AKIARZPUZDIKAWS2LJNF", "arn": "arn:aws:iam::123456789012:user/svc-a"}});
        let e = to_event(&rec, TokenRef { token_id: 3, retired: false }, "cloudtrail-file", "/x.json", Utc::now());
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.event_time.to_rfc3339(), "2023-07-10T11:42:36+00:00");
        assert_eq!(e.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(e.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(
            parse_event_time("2023-01-10 21:04:02.000000000").unwrap().to_rfc3339(),
            "2023-01-10T21:04:02+00:00"
        );
        let no_id =
            to_event(&json!({"userIdentity": {}}), TokenRef { token_id: 1, retired: false }, "s", "o", Utc::now());
        assert!(no_id.event_id.starts_with("synthetic-"));
    }
}
