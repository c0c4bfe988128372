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
    let broken = format!(r#"{{"Records":[{record},{{"eventVersion":"#);
    sink.document("broken", &detector.document(broken.as_bytes(), "test", "broken")).await.unwrap();
    assert_eq!(sink.unparsed_hits, 1);
    assert_eq!(UNPARSED_HITS.load(Ordering::Relaxed), before + 1, "counted for /metrics");
}
