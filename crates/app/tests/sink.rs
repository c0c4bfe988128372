//! The sink every source feeds: events are stored once, grouped into
//! incidents, and a honey key in a document that cannot be parsed is
//! counted for `/metrics` (and logged), never dropped silently.

mod common;

use std::sync::atomic::Ordering;

use honeytrail_app::config::Config;
use honeytrail_app::sources::{Sink, UNPARSED_HITS};
use honeytrail_app::Ops;
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_stores_once_and_counts_unparsed_hits() {
    let (_dir, store, token) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let ops = Ops::new(store, Config::default());
    let mut index = KeyIndex::new();
    index.insert(TokenRef { token_id: token.id, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
    let detector = Detector::new(index);
    let record = r#"{"eventVersion":"1.09","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"},"eventTime":"2026-11-28T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","eventID":"e-1"}"#;
    let mut sink = Sink::new(&ops);

    let good = format!(r#"{{"Records":[{record}]}}"#);
    sink.document("good", &detector.document(good.as_bytes(), "test", "good")).await.unwrap();
    sink.document("again", &detector.document(good.as_bytes(), "test", "again")).await.unwrap();
    assert_eq!((sink.matches, sink.duplicates), (2, 1), "the same event is stored once");
    assert_eq!(sink.take_touched(), vec![(1, "incident.opened")]);

    let before = UNPARSED_HITS.load(Ordering::Relaxed);
    // A whole record in a cut document is read; a key outside every record is counted.
    let broken = format!(r#"{{"Records":[{record},{{"eventVersion":"#);
    sink.document("broken", &detector.document(broken.as_bytes(), "test", "broken")).await.unwrap();
    assert_eq!((sink.matches, sink.duplicates, sink.unparsed_hits), (3, 2, 0));
    let stray = format!(r#"{{"Records":[{record}],"note":{{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}}}"#);
    sink.document("stray", &detector.document(stray.as_bytes(), "test", "stray")).await.unwrap();
    assert_eq!(sink.unparsed_hits, 1);
    assert_eq!(UNPARSED_HITS.load(Ordering::Relaxed), before + 1, "counted for /metrics");
}

/// What an intruder puts into request parameters (bytes a strict JSON
/// parser refuses) neither costs the EventBridge event nor gets a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_eventbridge_bodies_still_open_incidents() {
    let (_dir, store, _token) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let ops = Ops::new(store.clone(), Config::default());
    let receivers = honeytrail_app::sources::receivers::Receivers::new(&ops).await.unwrap();
    let event = |id: &str, params: &[u8]| {
        let head = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","detail":{{"eventVersion":"1.09","userIdentity":{{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}},"eventTime":"2026-11-28T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"{id}","requestParameters":{{"p":"#
        );
        [head.as_bytes(), params, b"}}}"].concat()
    };
    let deep = format!("{}0{}", "[".repeat(200), "]".repeat(200));
    for (id, params) in [
        ("surrogate", br#""\ud800""#.to_vec()),
        ("utf8", vec![b'"', 0xff, b'"']),
        ("deep", deep.into_bytes()),
        ("control", b"\"\x1b[2J\"".to_vec()),
    ] {
        let body = event(id, &params);
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err(), "{id}: strict JSON refuses it");
        let accepted = receivers.eventbridge(&body).await.unwrap().unwrap_or_else(|r| panic!("{id}: refused: {r:?}"));
        assert_eq!(accepted.matched, 1, "{id}");
    }
    let events = store.incident_events(1).await.unwrap();
    let mut ids: Vec<&str> = events.iter().map(|(e, _)| e.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["control", "deep", "surrogate", "utf8"]);
    // Not JSON and no honey key: still refused as malformed.
    assert!(matches!(
        receivers.eventbridge(b"hello").await.unwrap(),
        Err(honeytrail_app::sources::receivers::Refusal::Malformed(_))
    ));
}

/// The receivers' match index follows the token table without a restart:
/// tokens added are added to it, other changes rebuild it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receivers_index_follows_new_and_retired_tokens() {
    let (_dir, store, first) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let ops = Ops::new(store.clone(), Config::default());
    let receivers = honeytrail_app::sources::receivers::Receivers::new(&ops).await.unwrap();
    let event = |key: &str, id: &str| {
        format!(
            r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{{"eventVersion":"1.09","eventID":"{id}","eventTime":"2026-11-28T10:00:00Z","eventName":"ListBuckets","userIdentity":{{"accessKeyId":"{key}"}}}}}}"#
        )
    };
    let second = "AKIASECONDSECONDSEC2";
    assert_eq!(receivers.eventbridge(event(second, "a").as_bytes()).await.unwrap().unwrap().matched, 0);
    store
        .insert_token(&honeytrail_core::NewToken { access_key_id: second.into(), ..Default::default() }, &[], &[])
        .await
        .unwrap();
    ops.tokens_changed();
    assert_eq!(receivers.eventbridge(event(second, "b").as_bytes()).await.unwrap().unwrap().matched, 1);
    assert_eq!(receivers.eventbridge(event("AKIARZPUZDIKAWS2LJNF", "c").as_bytes()).await.unwrap().unwrap().matched, 1);
    // A retired key (a change that is not an addition: the index is rebuilt) still matches.
    store.retire_token(first.id, chrono::Utc::now()).await.unwrap();
    ops.tokens_changed();
    assert_eq!(receivers.eventbridge(event("AKIARZPUZDIKAWS2LJNF", "d").as_bytes()).await.unwrap().unwrap().matched, 1);
    assert_eq!(receivers.eventbridge(event(second, "e").as_bytes()).await.unwrap().unwrap().matched, 1);
}

/// One match index per process, shared by every source and kept current:
/// a pass when nothing changed reuses it (one fingerprint query, no build),
/// a token registered by another process is matched by the next pass
/// without a signal, and a retirement rebuilds it. Watchers on their own
/// runtimes share it through `Ops::sharing_with`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_live_index_serves_every_source_and_follows_the_token_table() {
    let (_dir, store, first) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let ops = Ops::new(store.clone(), Config::default());
    let watcher = ops.sharing_with(Ops::new(store.clone(), Config::default()));
    let built = Sink::new(&ops).detector().await.unwrap();
    let again = Sink::new(&watcher).detector().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&built, &again), "an unchanged table reuses the index, across sources");
    // Registered elsewhere (another process): no signal reaches this one.
    let second = "AKIASECONDSECONDSEC2";
    store
        .insert_token(&honeytrail_core::NewToken { access_key_id: second.into(), ..Default::default() }, &[], &[])
        .await
        .unwrap();
    let grown = Sink::new(&watcher).detector().await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&built, &grown));
    assert_eq!(grown.index().len(), 2, "the next pass matches the new token");
    assert!(grown.index().get(second.as_bytes()).is_some());
    // A retirement is not an addition: the index is rebuilt, and says so.
    store.retire_token(first.id, chrono::Utc::now()).await.unwrap();
    let rebuilt = Sink::new(&ops).detector().await.unwrap();
    assert!(rebuilt.index().get(b"AKIARZPUZDIKAWS2LJNF").is_some_and(|t| t.retired));
    assert_eq!(rebuilt.index().len(), 2);
}

/// AWS's own exposure finding (AWS Health, over an EventBridge API
/// destination or SQS) opens an incident of kind "exposed", apart from the
/// incidents of the key's use, with where AWS found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_health_exposure_findings_open_exposed_incidents() {
    let (_dir, store, token) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let ops = Ops::new(store.clone(), Config::default());
    let receivers = honeytrail_app::sources::receivers::Receivers::new(&ops).await.unwrap();
    let finding = r#"{"version":"0","id":"f-1","detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","time":"2026-11-28T06:27:57Z","region":"us-east-1","resources":[],"detail":{"eventArn":"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X1","service":"RISK","eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED","eventTypeCategory":"issue","startTime":"Sat, 28 Nov 2026 06:27:57 GMT","eventDescription":[{"language":"en_US","latestDescription":"Your AWS Access Key AKIARZPUZDIKAWS2LJNF is exposed publicly on https://github.com/example/repo/blob/main/.env"}],"affectedEntities":[{"entityValue":"AKIARZPUZDIKAWS2LJNF"}]}}"#;
    assert_eq!(receivers.eventbridge(finding.as_bytes()).await.unwrap().unwrap().matched, 1);
    assert_eq!(receivers.eventbridge(finding.as_bytes()).await.unwrap().unwrap().matched, 1, "seen again: stored once");
    let used = r#"{"detail-type":"AWS API Call via CloudTrail","detail":{"eventVersion":"1.09","eventID":"u-1","eventTime":"2026-11-28T06:40:00Z","eventName":"ListBuckets","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}}"#;
    assert_eq!(receivers.eventbridge(used.as_bytes()).await.unwrap().unwrap().matched, 1);
    let incidents = store.incidents(&Default::default()).await.unwrap();
    use honeytrail_core::incident::IncidentKind;
    let mut kinds: Vec<(i64, &str)> = incidents.iter().map(|i| (i.token_id, i.kind.as_str())).collect();
    kinds.sort();
    assert_eq!(kinds, [(token.id, "exposed"), (token.id, "use")]);
    let exposed = incidents.iter().find(|i| i.kind == IncidentKind::Exposed).unwrap();
    let events = store.incident_events(exposed.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].0.error_message.as_deref().unwrap().contains("github.com/example/repo"));
}
