//! The dispatcher as a library: an incident change queues an alert in the
//! same transaction; a pass fans it out to the enabled channels, delivers
//! the typed record, and marks it done; a channel that cannot take it is
//! retried later, never marked delivered.

mod common;

use chrono::{Duration, Utc};
use honeytrail_alert::ChannelConfig;
use honeytrail_app::dispatch::{dispatch, Pass, Settings};
use honeytrail_core::incident::TokenEvent;
use honeytrail_core::record::AlertRecord;
use honeytrail_core::Secret;

fn event(token_id: i64, id: &str) -> TokenEvent {
    TokenEvent {
        event_id: id.into(),
        token_id,
        event_time: Utc::now() - Duration::minutes(2),
        event_source: "sts.amazonaws.com".into(),
        event_name: "GetCallerIdentity".into(),
        aws_region: Some("us-east-1".into()),
        source_ip: Some("198.51.100.23".into()),
        user_agent: Some("aws-cli/2.15".into()),
        error_code: None,
        error_message: None,
        access_key_id: Some("AKIARZPUZDIKAWS2LJNF".into()),
        principal_arn: None,
        vpc_endpoint: None,
        vpc_endpoint_account: None,
        source: "test".into(),
        origin: "dispatch test".into(),
        raw: "{}".into(),
    }
}

fn settings(jsonl_dir: &std::path::Path) -> Settings {
    Settings {
        timeout: std::time::Duration::from_secs(2),
        lease: Duration::seconds(30),
        allowed_hosts: Vec::new(),
        files: honeytrail_alert::channels::jsonl::FilePolicy { dir: jsonl_dir.to_path_buf(), protected: None },
        public_url: "https://honeytrail.example.com".into(),
        owner_link_ttl: Duration::days(1),
        enrich: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_delivers_the_typed_record_once_and_retries_what_failed() {
    let (dir, store, token) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let lines = dir.path().join("alerts.jsonl");
    let good = ChannelConfig::from(honeytrail_alert::JsonLinesConfig {
        path: lines.display().to_string(),
        format: Default::default(),
    });
    store.add_channel("siem", good.kind(), &Secret::new(good.to_json())).await.unwrap();
    // A path that is a directory cannot be appended to.
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    let bad = ChannelConfig::from(honeytrail_alert::JsonLinesConfig {
        path: dir.path().join("a-directory").display().to_string(),
        format: Default::default(),
    });
    store.add_channel("broken", bad.kind(), &Secret::new(bad.to_json())).await.unwrap();

    store.record_event(&event(token.id, "e-1"), Duration::hours(1)).await.unwrap();
    let settings = settings(dir.path());
    let sender = settings.sender().unwrap();
    let pass = dispatch(&store, &sender, &settings).await.unwrap();
    assert_eq!(pass, Pass { delivered: 1, retrying: 1, dead: 0 });

    let text = std::fs::read_to_string(&lines).unwrap();
    let records: Vec<AlertRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!((r.schema.as_str(), r.alert_kind()), ("honeytrail.alert.v1", "incident.opened"));
    assert_eq!(r.incident.url.as_deref(), Some("https://honeytrail.example.com/incidents/1"));
    assert_eq!(r.events.len(), 1);
    assert!(r.events[0].detection_delay_seconds.unwrap() >= 120);
    assert!(r.delivery_id.is_some());

    // Nothing more is due now: the failed delivery waits for its backoff.
    let again = dispatch(&store, &sender, &settings).await.unwrap();
    assert_eq!(again, Pass::default());
    assert_eq!(std::fs::read_to_string(&lines).unwrap(), text, "delivered once");
    let pending = store.deliveries("pending").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].channel, "broken");
    assert!(pending[0].last_error.is_some());
}
