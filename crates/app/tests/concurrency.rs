//! No event is refused or lost because another writer is busy: EventBridge
//! deliveries arriving many at a time while `honeytrail ingest` (another
//! process, here another connection pool) writes the same database, on
//! SQLite and on PostgreSQL. Every event is stored exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;

use honeytrail_app::config::Config;
use honeytrail_app::sources::files::Files;
use honeytrail_app::sources::receivers::Receivers;
use honeytrail_app::sources::Sink;
use honeytrail_app::Ops;
use honeytrail_core::{NewToken, SecretBox};
use honeytrail_store::{IncidentFilter, Store};

const PUSHED: usize = 2000;
const INGESTED: usize = 2000;
const AT_ONCE: usize = 16;
const TOKENS: usize = 8;

fn key(n: usize) -> String {
    format!("AKIACONCURRENT{n:06}")
}

fn record(n: usize, id: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": format!("2026-11-28T10:{:02}:{:02}Z", (n / 60) % 60, n % 60),
        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": format!("agent-{n}"),
        "userIdentity": {"type": "IAMUser", "accessKeyId": key(n % TOKENS)}
    })
}

async fn burst(url: String) {
    let data_key = SecretBox::generate_key();
    // Two pools on one database: the server's and an ingest process's.
    let served = Store::open(&url, Some(SecretBox::from_base64(&data_key).unwrap())).await.unwrap();
    let ingesting = Store::open(&url, Some(SecretBox::from_base64(&data_key).unwrap())).await.unwrap();
    for n in 0..TOKENS {
        served.insert_token(&NewToken { access_key_id: key(n), ..NewToken::default() }, &[], &[]).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trail.json");
    let records: Vec<_> = (0..INGESTED).map(|n| record(n, &format!("file-{n}"))).collect();
    std::fs::write(&log, serde_json::json!({ "Records": records }).to_string()).unwrap();

    let receivers = Arc::new(Receivers::new(&Ops::new(served.clone(), Config::default())).await.unwrap());
    let ingest_ops = Ops::new(ingesting, Config::default());
    let ingest = tokio::spawn(async move {
        let mut sink = Sink::new(&ingest_ops);
        Files { paths: vec![log] }.ingest(&mut sink, 1 << 30, &|_| {}).await.map(|s| s.matches)
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut pushes = tokio::task::JoinSet::new();
    for n in 0..PUSHED {
        let (receivers, gate) = (receivers.clone(), gate.clone());
        pushes.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let body =
                serde_json::json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
                                          "detail": record(n, &format!("pushed-{n}"))})
                .to_string();
            receivers.eventbridge(body.as_bytes()).await.map_err(|e| format!("{e:#}"))
        });
    }
    let mut answered = 0;
    while let Some(done) = pushes.join_next().await {
        let accepted = done.unwrap().unwrap_or_else(|e| panic!("an event was refused: {e}")).unwrap();
        assert_eq!(accepted.matched, 1);
        answered += 1;
    }
    assert_eq!(answered, PUSHED);
    assert_eq!(ingest.await.unwrap().unwrap(), INGESTED, "the ingest read every record while the server wrote");

    let mut stored = Vec::new();
    for incident in served.incidents(&IncidentFilter::default()).await.unwrap() {
        stored.extend(served.incident_events(incident.id).await.unwrap().into_iter().map(|(e, _)| e.event_id));
    }
    let distinct: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "no event is stored twice");
    assert_eq!(stored.len(), PUSHED + INGESTED, "every event is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stores_every_event_of_a_burst_while_ingesting() {
    let (_dir, url) = honeytrail_testkit::sqlite_database();
    burst(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stores_every_event_of_a_burst_while_ingesting() {
    burst(honeytrail_testkit::postgres_database().await).await;
}
