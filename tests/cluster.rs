//! Replicas: several `honeytrail serve` processes on one PostgreSQL
//! database. The first start makes one admin however many start at once;
//! every replica registers and beats; each periodic job runs on one replica
//! under a lease, and a replica killed with SIGKILL loses its jobs to
//! another within one lease; a key registered anywhere matches at once on
//! every replica.

mod common;
use common::*;

const EB_SECRET: &str = "eb-secret-for-tests-0123456789abcdef";
/// Short leases, so a takeover is quick to see.
const LEASE: &str = "2";

fn status(env: &Env) -> serde_json::Value {
    env.run(&["cluster", "status", "--json"]).ok().json()
}

/// Waits (at most 60 s) until `cluster status` says what `done` looks for.
fn until(env: &Env, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = status(env);
        if done(&s) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "{what} did not happen within a minute: {s:#}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn holder<'a>(s: &'a serde_json::Value, job: &str) -> Option<&'a str> {
    s["jobs"].as_array()?.iter().find(|j| j["name"] == job)?["holder"].as_str()
}

fn post_event(server: &Server, key: &str, event_id: &str) -> serde_json::Value {
    let event = serde_json::json!({
        "version": "0", "id": format!("eb-{event_id}"), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sts", "account": "123456789012", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": trail_record(key, "svc-reader", event_id, "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)
    })
    .to_string();
    let (status, body) = server.call(
        "POST",
        "/ingest/eventbridge",
        &[("Content-Type", "application/json"), ("x-honeytrail-secret", EB_SECRET)],
        &event,
    );
    assert_eq!(status, 202, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_database_and_one_of_them_runs_each_job() {
    let mut env = Env::new();
    env.database = Some(honeytrail_testkit::postgres_database().await);
    tokio::task::spawn_blocking(move || {
        env.run(&["init"]).ok();
        let secrets = [("HONEYTRAIL_EVENTBRIDGE_SECRET", EB_SECRET), ("HONEYTRAIL_CLUSTER_LEASE_SECONDS", LEASE)];
        // Two replicas start at the same moment on an empty database: one
        // makes the first admin, both serve.
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| Server::start(&env, &secrets));
            let b = scope.spawn(|| Server::start(&env, &secrets));
            (a.join().unwrap(), b.join().unwrap())
        });
        let users = env.run(&["user", "list", "--json"]).ok().json();
        assert_eq!(users.as_array().unwrap().len(), 1, "one first admin: {users}");
        assert_eq!(users[0]["name"], "admin");
        let audit = env.run(&["audit", "list", "--json"]).ok().json();
        let made = audit.as_array().unwrap().iter().filter(|e| e["action"] == "user.create").count();
        assert_eq!(made, 1, "{audit}");

        // Both registered; each job has exactly one holder, one of them.
        let s = until(&env, "both replicas up and every job held, the safety net run once", |s| {
            let up = s["replicas"].as_array().is_some_and(|r| r.iter().filter(|r| r["state"] == "up").count() == 2);
            let safety_net_ran =
                s["jobs"].as_array().unwrap().iter().any(|j| j["name"] == "safety-net" && j["last_run"].is_string());
            up && holder(s, "fleet").is_some() && holder(s, "response").is_some() && safety_net_ran
        });
        let ids: Vec<String> =
            s["replicas"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        let addresses: Vec<String> =
            s["replicas"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap().to_string()).collect();
        assert!(
            addresses.contains(&format!("127.0.0.1:{}", a.port))
                && addresses.contains(&format!("127.0.0.1:{}", b.port)),
            "{s}"
        );
        for r in s["replicas"].as_array().unwrap() {
            assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
            assert!(r["last_heartbeat"].is_string());
        }
        let fleet_holder = holder(&s, "fleet").unwrap().to_string();
        assert!(ids.contains(&fleet_holder), "{s}");
        assert!(a.metrics().contains("honeytrail_cluster_replicas 2"), "{}", a.metrics());
        assert!(a.metrics().contains("honeytrail_job_held{job=\"fleet\""), "{}", a.metrics());

        // A key registered by the command line matches at once on every
        // replica, even one that answered "no match" for it a moment ago.
        let key = honeytrail_core::keyid::synthesize(123456789012, 4242);
        assert_eq!(post_event(&a, &key, "before")["matched"], 0);
        env.run(&["token", "import", "aws", "--access-key-id", &key]).ok();
        assert_eq!(post_event(&a, &key, "after-a")["matched"], 1);
        assert_eq!(post_event(&b, &key, "after-b")["matched"], 1);
        let incidents = env.run(&["incident", "list", "--json"]).ok().json();
        assert_eq!(incidents.as_array().unwrap().len(), 1, "one incident for both events: {incidents}");

        // The holder of the fleet job dies without a word: the other
        // replica holds it within a lease (and a beat), and the dead one
        // shows as silent.
        let (mut dead, alive) = {
            let a_id = addresses.iter().position(|x| x == &format!("127.0.0.1:{}", a.port)).unwrap();
            if ids[a_id] == fleet_holder {
                (a, b)
            } else {
                (b, a)
            }
        };
        dead.child.kill().unwrap(); // SIGKILL
        dead.child.wait().unwrap();
        let s = until(&env, "the fleet job taken over", |s| {
            holder(s, "fleet").is_some_and(|h| h != fleet_holder)
                && holder(s, "response").is_some_and(|h| h != fleet_holder)
        });
        let survivor = holder(&s, "fleet").unwrap().to_string();
        assert!(ids.contains(&survivor));
        until(&env, "the killed replica seen as silent", |s| {
            s["replicas"].as_array().unwrap().iter().any(|r| r["id"] == fleet_holder.as_str() && r["state"] == "silent")
        });
        let s = until(&env, "the fleet job run by the survivor", |s| {
            s["jobs"].as_array().unwrap().iter().any(|j| j["name"] == "fleet" && j["last_run_by"] == survivor.as_str())
        });
        assert!(s["jobs"].as_array().unwrap().iter().all(|j| j["last_error"].is_null()), "{s:#}");
        assert_eq!(post_event(&alive, &key, "after-kill")["matched"], 1);
        drop(alive);
    })
    .await
    .unwrap();
}

/// PostgreSQL stopped and started under load: while it is down every
/// request is answered 503 with a clear message (never a hang, never a
/// 500), the process keeps serving; once it is back, work resumes without
/// a restart, and every event that was answered 202 is stored, once.
#[test]
fn a_database_outage_is_answered_503_and_work_resumes_without_a_restart() {
    let pg = honeytrail_testkit::PrivatePostgres::start();
    let mut env = Env::new();
    env.database = Some(pg.url.clone());
    env.run(&["init"]).ok();
    let key = honeytrail_core::keyid::synthesize(123456789012, 5151);
    env.run(&["token", "import", "aws", "--access-key-id", &key]).ok();
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", EB_SECRET)]);
    let token = env.run(&["user", "token", "admin", "--for", "tests"]);
    let bearer = format!("Bearer {}", token.ok().stdout.trim());
    assert_eq!(post_event(&server, &key, "up-1")["matched"], 1);

    // Load: events posted one after another, on their own thread, for as
    // long as the test runs; each answer is kept.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, port, key) = (stop.clone(), server.port, key.clone());
        std::thread::spawn(move || {
            let mut answers: Vec<(String, u16, String)> = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = format!("load-{n}");
                let event = serde_json::json!({
                    "version": "0", "id": format!("eb-{id}"), "detail-type": "AWS API Call via CloudTrail",
                    "source": "aws.sts", "account": "123456789012", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
                    "detail": trail_record(&key, "svc-reader", &id, "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)
                })
                .to_string();
                let (status, body) = honeytrail_testkit::http(
                    port,
                    "POST",
                    "/ingest/eventbridge",
                    &[("Content-Type", "application/json"), ("x-honeytrail-secret", EB_SECRET)],
                    &event,
                )
                .unwrap_or((0, String::new()));
                answers.push((id, status, body));
            }
            answers
        })
    };
    let answered = |want: u16| {
        // Waits (at most two minutes) until the API answers `want`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (status, body) = server.call("GET", "/api/v1/incidents", &[("Authorization", &bearer)], "");
            if status == want {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "the API never answered {want}: {status} {body}");
            assert!(status == 200 || status == 503, "only 200 or 503, not {status}: {body}");
        }
    };
    answered(200);

    pg.stop();
    let body = answered(503);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "store_unavailable", "{body}");
    assert!(error["error"]["message"].as_str().unwrap().contains("the database cannot be used now; retry"), "{body}");
    let (status, _) = server.call("GET", "/readyz", &[], "");
    assert_eq!(status, 503, "not ready while the database is down");
    let (status, _) = server.call("GET", "/healthz", &[], "");
    assert_eq!(status, 200, "the process itself is alive");

    pg.resume();
    answered(200);
    let (status, _) = server.call("GET", "/readyz", &[], "");
    assert_eq!(status, 200);
    assert_eq!(post_event(&server, &key, "up-2")["matched"], 1, "events are matched again");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = load.join().unwrap();

    // Every answer was 202 or 503; at least one of each; every 202 stored once.
    let accepted: Vec<&str> = answers.iter().filter(|a| a.1 == 202).map(|a| a.0.as_str()).collect();
    let refused = answers.iter().filter(|a| a.1 == 503).count();
    let other: Vec<_> = answers.iter().filter(|a| a.1 != 202 && a.1 != 503).collect();
    assert!(other.is_empty(), "answers other than 202 or 503: {other:?}");
    assert!(!accepted.is_empty() && refused > 0, "{} accepted, {refused} refused", accepted.len());
    for (_, status, body) in answers.iter().filter(|a| a.1 == 503) {
        assert!(body.contains("retry"), "a 503 says to retry: {status} {body}");
    }
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    let id = incidents[0]["id"].as_i64().unwrap().to_string();
    let events = env.run(&["incident", "events", &id, "--json"]).ok().json();
    let stored: std::collections::BTreeSet<String> =
        events.as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect();
    for id in accepted.iter() {
        assert!(stored.contains(*id), "{id} was answered 202 but is not stored");
    }
    assert_eq!(stored.len(), events.as_array().unwrap().len(), "every event once");
    eprintln!(
        "outage under load: {} events accepted, {refused} refused with 503, {} stored",
        accepted.len(),
        stored.len()
    );
}
