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

/// Reads one HTTP request from `stream`: its body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the dispatcher closed the connection mid-request");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_goes_out_while_a_slow_delivery_of_another_incident_is_on_its_way() {
    use tokio::io::AsyncWriteExt;
    let (dir, store, first) = common::store_with_token("AKIARZPUZDIKAWS2LJNF").await;
    let second = store
        .insert_token(
            &honeytrail_core::NewToken { access_key_id: "AKIARZPUZDIKBBBBBBBB".into(), ..Default::default() },
            &[],
            &[],
        )
        .await
        .unwrap();
    // A receiver that holds the first incident's alert until told, and
    // reports each alert's incident as it arrives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<String>();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let receiver = {
        let release = release.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let (arrived, release) = (arrived.clone(), release.clone());
                tokio::spawn(async move {
                    let body = read_request(&mut stream).await;
                    let incident = if body.contains("/incidents/1\"") { "1" } else { "2" };
                    arrived.send(incident.to_string()).unwrap();
                    if incident == "1" {
                        release.notified().await;
                    }
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await
                        .unwrap();
                });
            }
        })
    };
    let hook = ChannelConfig::from(honeytrail_alert::WebhookConfig {
        url,
        secret: String::new(),
        headers: Default::default(),
        format: Default::default(),
    });
    store.add_channel("hook", hook.kind(), &Secret::new(hook.to_json())).await.unwrap();
    let mut settings = settings(dir.path());
    settings.timeout = std::time::Duration::from_secs(120);
    settings.allowed_hosts = vec!["127.0.0.1".into()];
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(honeytrail_app::dispatch::run_dispatcher(
        store.clone(),
        settings,
        Some(stopped),
        Some(wake.clone()),
    ));

    store.record_event(&event(first.id, "e-1"), Duration::hours(1)).await.unwrap();
    wake.notify_one();
    assert_eq!(arrivals.recv().await.unwrap(), "1");
    // The first alert is held at the receiver; the second incident's alert
    // must not wait for it (the old dispatcher finished a pass first).
    let mut second_event = event(second.id, "e-2");
    second_event.access_key_id = Some("AKIARZPUZDIKBBBBBBBB".into());
    store.record_event(&second_event, Duration::hours(1)).await.unwrap();
    wake.notify_one();
    let next = tokio::time::timeout(std::time::Duration::from_secs(60), arrivals.recv())
        .await
        .expect("the second incident's alert waited for the first's slow delivery");
    assert_eq!(next.unwrap(), "2");

    release.notify_one();
    stop.send(true).unwrap();
    dispatcher.await.unwrap().unwrap();
    assert!(store.deliveries("pending").await.unwrap().is_empty(), "both delivered once the receiver answered");
    assert_eq!(store.deliveries("delivered").await.unwrap().len(), 2);
    receiver.abort();
}
