//! Upgrades: a database left at every earlier schema version, holding
//! data written as that version's tables stood, migrates forward to this
//! build's schema with nothing lost, on SQLite and on PostgreSQL.

use honeytrail_core::incident::{IncidentKind, Severity};
use honeytrail_core::SecretBox;
use honeytrail_store::{EventColumn, IncidentFilter, PlacementFilter, Store};
use sqlx::Row;

const KEY: &str = "AKIAQYLPMN5HHHFPZAM2";
const T0: i64 = 1_764_320_000_000; // 2025-11-28T08:53:20Z

fn data_key() -> SecretBox {
    SecretBox::from_base64(&SecretBox::generate_key()).unwrap()
}

/// Writes a token with a label, a placement, a custody hop and (from
/// version 2, which added incidents) an incident with one event, with the
/// columns the first migrations made: what any release since held.
async fn write_old_data(url: &str, version: i64) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.unwrap();
    let id: i64 = sqlx::query(
        "INSERT INTO tokens (kind, access_key_id, iam_user_name, memo, state, created_at) \
         VALUES ('aws-imported', $1, 'svc-backup', 'kept since the first release', 'active', $2) RETURNING id",
    )
    .bind(KEY)
    .bind(T0)
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .try_get("id")
    .unwrap();
    for (sql, text) in [
        ("INSERT INTO token_labels (token_id, name, value) VALUES ($1, 'severity', $2)", "medium"),
        (
            "INSERT INTO placements (token_id, host, path, placed_at) VALUES ($1, $2, '/srv/.env', 1764320000000)",
            "db-7",
        ),
        ("INSERT INTO custody_hops (token_id, seq, at, description) VALUES ($1, 1, 1764320000000, $2)", "made by hand"),
    ] {
        sqlx::query(sql).bind(id).bind(text).execute(&mut conn).await.unwrap();
    }
    if version < 2 {
        return;
    }
    let incident: i64 = sqlx::query(
        "INSERT INTO incidents (token_id, state, first_seen, last_seen, event_count, opened_at, updated_at) \
         VALUES ($1, 'open', $2, $3, 1, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(T0)
    .bind(T0)
    .bind(T0)
    .bind(T0)
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .try_get("id")
    .unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, token_id, incident_id, event_time, seen_at, event_source, event_name, \
         source_ip, user_agent, source, origin, raw) \
         VALUES ('old-1', $1, $2, $3, $4, 'sts.amazonaws.com', 'GetCallerIdentity', '198.51.100.7', 'aws-cli/2', \
         'file', 'old.json', '{}')",
    )
    .bind(id)
    .bind(incident)
    .bind(T0)
    .bind(T0)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// What must read back after the upgrade.
async fn check_upgraded(store: &Store, from: i64) {
    let token = store.token_by_key(KEY).await.unwrap().unwrap_or_else(|| panic!("from {from}: the token"));
    assert_eq!(token.labels.get("severity").map(String::as_str), Some("medium"), "from {from}");
    let placed = store.placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() }).await.unwrap();
    assert_eq!(placed.len(), 1, "from {from}");
    assert_eq!(placed[0].placement.spot.host, "db-7");
    assert_eq!(store.hops(token.id).await.unwrap().len(), 1, "from {from}");
    let incidents = store.incidents(&IncidentFilter::default()).await.unwrap();
    if from < 2 {
        assert!(incidents.is_empty());
        return;
    }
    assert_eq!(incidents.len(), 1, "from {from}");
    let i = &incidents[0];
    assert_eq!((i.kind, i.severity, i.event_count), (IncidentKind::Use, Severity::Medium, 1), "from {from}");
    assert_eq!(store.event_counts(i.id, EventColumn::Api).await.unwrap(), vec![("GetCallerIdentity".into(), 1)]);
    assert_eq!(store.incident_events(i.id).await.unwrap().len(), 1, "from {from}");
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn every_release_upgrades(backend: Backend) {
    let latest = honeytrail_store::latest_schema_version();
    assert!(latest >= 24);
    let mut dirs = Vec::new(); // each SQLite database's directory, kept to the end
    for from in 1..latest {
        let url = match backend {
            Backend::Sqlite => {
                let (dir, url) = honeytrail_testkit::sqlite_database();
                dirs.push(dir);
                url
            }
            Backend::Postgres => honeytrail_testkit::postgres_database().await,
        };
        let old = Store::open_at_schema(&url, Some(data_key()), from).await.unwrap();
        assert_eq!(old.schema_version().await.unwrap(), from);
        old.close().await;
        write_old_data(&url, from).await;
        let store = Store::open(&url, Some(data_key())).await.unwrap_or_else(|e| panic!("from {from}: {e}"));
        assert_eq!(store.schema_version().await.unwrap(), latest, "from {from}");
        check_upgraded(&store, from).await;
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_earlier_schema_upgrades_with_its_data_on_sqlite() {
    every_release_upgrades(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_earlier_schema_upgrades_with_its_data_on_postgres() {
    every_release_upgrades(Backend::Postgres).await;
}

/// A database a newer build migrated is refused, naming both versions and
/// the fix, and left as it is.
async fn a_newer_schema_is_refused(url: String) {
    let store = Store::open(&url, Some(data_key())).await.unwrap();
    store.close().await;
    let newer = honeytrail_store::latest_schema_version() + 1;
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from-the-future', 0)")
        .bind(newer)
        .execute(&mut conn)
        .await
        .unwrap();
    let Err(err) = Store::open(&url, Some(data_key())).await else { panic!("a newer schema is refused") };
    let err = err.to_string();
    assert!(err.contains(&format!("version {newer}")) && err.contains("upgrade honeytrail"), "{err}");
    let left: i64 =
        sqlx::query("SELECT MAX(version) FROM schema_migrations").fetch_one(&mut conn).await.unwrap().get(0);
    assert_eq!(left, newer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_on_sqlite() {
    let (_dir, url) = honeytrail_testkit::sqlite_database();
    a_newer_schema_is_refused(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_on_postgres() {
    a_newer_schema_is_refused(honeytrail_testkit::postgres_database().await).await;
}
