//! Queue messages: what arrives on SQS and where its CloudTrail records are.
//!
//! A message is one of: an S3 event notification naming new log files
//! (possibly wrapped in an SNS notification), CloudTrail's own SNS
//! notification (`s3Bucket` + `s3ObjectKey`), an EventBridge event carrying a
//! CloudTrail record, or S3's `s3:TestEvent`, sent once when a notification is
//! configured, which is accepted and ignored.

use honeytrail_core::encoding::percent_decode;
use serde_json::Value;

/// What a message asks of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// S3's configuration test; nothing to do.
    TestEvent,
    /// New objects to fetch: `(bucket, key)`, keys already URL-decoded.
    Objects(Vec<(String, String)>),
    /// A CloudTrail document carried in the message itself (EventBridge).
    Document(String),
    /// An SNS topic asks to deliver to this queue: a person must confirm it
    /// (honeytrail never fetches a URL a message names).
    SubscriptionConfirmation { topic_arn: String, subscribe_url: String },
    /// Anything else, with the reason.
    Unknown(String),
}

pub fn classify(body: &str) -> Message {
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        // An intruder's bytes in a carried record: read it repaired.
        Err(e) => match serde_json::from_slice(&crate::lenient::repair(body.as_bytes())) {
            Ok(v) => v,
            Err(_) => return Message::Unknown(format!("not JSON: {e}")),
        },
    };
    classify_value(value, 0)
}

fn classify_value(v: Value, depth: u8) -> Message {
    if depth > 3 {
        return Message::Unknown("nested too deeply".into());
    }
    // SNS wraps the real message as a string.
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        return match v.get("Message").and_then(Value::as_str) {
            Some(inner) => match serde_json::from_str(inner) {
                Ok(inner) => classify_value(inner, depth + 1),
                Err(e) => Message::Unknown(format!("SNS message is not JSON: {e}")),
            },
            None => Message::Unknown("SNS notification without a Message".into()),
        };
    }
    if v.get("Type").and_then(Value::as_str) == Some("SubscriptionConfirmation") {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Message::SubscriptionConfirmation { topic_arn: text("TopicArn"), subscribe_url: text("SubscribeURL") };
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Message::TestEvent;
    }
    if v.get("detail-type").is_some() {
        return if v.get("detail").map(Value::is_object).unwrap_or(false) {
            Message::Document(v.to_string())
        } else {
            Message::Unknown("EventBridge event without a detail object".into())
        };
    }
    if let (Some(bucket), Some(keys)) =
        (v.get("s3Bucket").and_then(Value::as_str), v.get("s3ObjectKey").and_then(Value::as_array))
    {
        let objects = keys.iter().filter_map(Value::as_str).map(|k| (bucket.to_string(), k.to_string())).collect();
        return Message::Objects(objects);
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        let objects: Vec<(String, String)> = records
            .iter()
            .filter(|r| r.get("eventName").and_then(Value::as_str).is_some_and(|n| n.starts_with("ObjectCreated")))
            .filter_map(|r| {
                let bucket = r.pointer("/s3/bucket/name")?.as_str()?;
                let key = r.pointer("/s3/object/key")?.as_str()?;
                Some((bucket.to_string(), percent_decode(key, true)))
            })
            .collect();
        if !objects.is_empty() || records.iter().any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
        {
            return Message::Objects(objects);
        }
        // A CloudTrail document sent straight to the queue.
        return Message::Document(v.to_string());
    }
    Message::Unknown("neither an S3 notification, a CloudTrail notification nor an EventBridge event".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"logs"},"object":{"key":"AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/a+b%3D.json.gz","size":1}}}]}"#;

    #[test]
    fn s3_notifications_direct_and_through_sns() {
        let want = Message::Objects(vec![(
            "logs".into(),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/a b=.json.gz".into(),
        )]);
        assert_eq!(classify(S3), want);
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": S3}).to_string();
        assert_eq!(classify(&sns), want);
    }

    #[test]
    fn the_other_shapes() {
        assert_eq!(classify(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"logs"}"#), Message::TestEvent);
        let trail = r#"{"s3Bucket":"logs","s3ObjectKey":["AWSLogs/1/CloudTrail/x.json.gz"]}"#;
        assert_eq!(classify(trail), Message::Objects(vec![("logs".into(), "AWSLogs/1/CloudTrail/x.json.gz".into())]));
        let eb = r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","detail":{"eventID":"e"}}"#;
        assert!(matches!(classify(eb), Message::Document(_)));
        assert!(matches!(classify("not json"), Message::Unknown(_)));
        let confirm = r#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"t","TopicArn":"arn:aws:sns:us-east-1:111122223333:trail","Message":"You have chosen to subscribe","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"}"#;
        assert_eq!(
            classify(confirm),
            Message::SubscriptionConfirmation {
                topic_arn: "arn:aws:sns:us-east-1:111122223333:trail".into(),
                subscribe_url: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t".into()
            }
        );
        let hostile = r#"{"detail-type":"AWS API Call via CloudTrail","detail":{"eventID":"e","requestParameters":{"p":"\ud800"}}}"#;
        assert!(matches!(classify(hostile), Message::Document(_)), "a lone surrogate does not make it unreadable");
        assert!(matches!(classify(r#"{"hello":1}"#), Message::Unknown(_)));
    }
}
