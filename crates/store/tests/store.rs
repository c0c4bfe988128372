//! Store behaviour, run on both backends: every test here exists twice,
//! `sqlite::NAME` and `postgres::NAME`.

use chrono::Utc;
use honeytrail_core::fleet::{AgentState, Ec2Instance, EnrolmentGuard as Guard};
use honeytrail_core::incident::{IncidentState, TokenEvent};
use honeytrail_core::{Labels, NewToken, Secret, SecretBox, Spot, TokenKind, TokenState};
use honeytrail_store::{
    AuditRecord, EventOutcome, ImportRow, IncidentFilter, NewHop, PlacementFilter, Store, StoreError, TokenFilter,
    TokenFingerprint,
};

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_dir, url) = honeytrail_testkit::sqlite_database();
                    super::$name(super::open(&url).await, url.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let url = honeytrail_testkit::postgres_database().await;
                    super::$name(super::open(&url).await, url.clone()).await;
                }
            )*
        }
    };
}

store_tests!(
    migrations_are_idempotent,
    tokens_round_trip_with_sealed_secret,
    duplicate_keys_are_refused,
    placements_search_and_remove,
    custody_is_ordered,
    retire_keeps_history,
    rotation_carries_placements,
    bulk_import_is_all_or_nothing,
    bulk_import_of_many_keys,
    label_filters,
    events_group_into_incidents_by_window,
    a_run_of_one_keys_calls_never_holds_up_another_key,
    incident_workflow_is_recorded,
    owner_questions_are_answered_once,
    update_alerts_keep_their_interval,
    users_sessions_api_tokens_and_audit,
    reports_and_dashboard_queries,
    audit_entries_commit_with_their_change,
    every_list_pages_by_keyset,
    identities_read_back_exactly,
    token_changes_are_counted_with_each_change,
    the_account_pool_counts_what_each_account_holds,
    enrolment_secrets_are_hashed_limited_and_spent_once,
    placement_templates_start_shipped_and_are_validated,
    enrolments_take_distinct_pool_keys_and_record_what_hosts_confirm,
    session_canaries_are_refreshed_in_place,
    many_hosts_enrol_at_once_without_exhausting_the_pool,
    enrolment_guards_are_kept_refusals_counted_and_one_agent_per_instance,
    reads_are_filed_once_matched_listed_and_settled,
    enrichment_data_is_kept_whole_and_replaced_per_kind,
    a_ci_runs_window_keeps_its_own_uses_and_nothing_else,
    attacker_text_with_nul_characters_is_stored_and_never_loses_an_event,
    a_call_the_database_refuses_among_calls_stored_together_costs_no_other,
    decoys_are_tokens_known_by_their_arn_and_keep_their_history,
);

const KEY: &str = "AKIAQYLPMN5HHHFPZAM2";

async fn open(url: &str) -> Store {
    let key = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    Store::open(url, Some(key)).await.expect("open store")
}

fn new_token(key: &str) -> NewToken {
    NewToken {
        kind: Some(TokenKind::AwsMinted),
        access_key_id: key.into(),
        secret: Some(Secret::new("tfteSlswRu7BJ86wekitnifILbZam1KYY3TG+Qp/")),
        iam_user_name: Some("payments-s3-sync-prod".into()),
        account_id: Some("123456789012".into()),
        memo: "laptop fleet".into(),
        labels: Labels::from([("team".into(), "payments".into())]),
        ..NewToken::default()
    }
}

fn spot(host: &str, owner: &str) -> Spot {
    Spot { host: host.into(), path: "~/.aws/credentials".into(), owner: Some(owner.into()), ..Spot::default() }
}

fn hop(text: &str) -> NewHop {
    NewHop { description: text.into(), actor: Some("alice".into()), automatic: false, at: Utc::now() }
}

async fn migrations_are_idempotent(store: Store, url: String) {
    assert_eq!(store.schema_version().await.unwrap(), honeytrail_store::latest_schema_version());
    assert!(honeytrail_store::latest_schema_version() >= 3);
    store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    // A second process (or replica) opening the same database migrates nothing
    // and sees the same data.
    let (again, third) = tokio::join!(Store::open(&url, None), Store::open(&url, None));
    let (again, third) = (again.unwrap(), third.unwrap());
    assert_eq!(again.schema_version().await.unwrap(), honeytrail_store::latest_schema_version());
    assert_eq!(third.list_tokens(&TokenFilter::default()).await.unwrap().len(), 1);
    // Without the data key the secret cannot be read, and the error says why.
    let t = again.find_token(KEY).await.unwrap();
    assert!(matches!(again.reveal_secret(t.id).await, Err(StoreError::NoSecretKey)));
}

async fn tokens_round_trip_with_sealed_secret(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[hop("generated on honeytrail server")]).await.unwrap();
    assert_eq!(t.access_key_id, KEY);
    assert!(t.has_secret);
    assert_eq!(t.state, TokenState::Active);
    assert_eq!(t.labels.get("team").map(String::as_str), Some("payments"));
    let found = store.find_token(KEY).await.unwrap();
    assert_eq!(found, t);
    assert_eq!(store.find_token(&format!("#{}", t.id)).await.unwrap(), t);
    let secret = store.reveal_secret(t.id).await.unwrap().unwrap();
    assert_eq!(secret.expose(), "tfteSlswRu7BJ86wekitnifILbZam1KYY3TG+Qp/");
    let err = store.find_token("AKIANOTREGISTEREDXXX").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn duplicate_keys_are_refused(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    match store.insert_token(&new_token(KEY), &[], &[]).await {
        Err(StoreError::Duplicate { existing_id, .. }) => assert_eq!(existing_id, t.id),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(store.list_tokens(&TokenFilter::default()).await.unwrap().len(), 1);
}

async fn placements_search_and_remove(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[spot("maria-mbp", "Maria Lopez")], &[]).await.unwrap();
    let p2 = store.add_placement(t.id, &spot("bastion-1.prod", "ops"), Utc::now()).await.unwrap();
    let by_host =
        store.placements(&PlacementFilter { host: Some("BASTION".into()), ..Default::default() }).await.unwrap();
    assert_eq!(by_host.len(), 1);
    assert_eq!(by_host[0].placement.id, p2.id);
    assert_eq!(by_host[0].access_key_id, KEY);
    let by_owner =
        store.placements(&PlacementFilter { owner: Some("maria".into()), ..Default::default() }).await.unwrap();
    assert_eq!(by_owner.len(), 1);
    // LIKE wildcards in the search are literal.
    let none = store.placements(&PlacementFilter { host: Some("%".into()), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
    store.remove_placement(p2.id, Utc::now()).await.unwrap();
    let active = store.placements(&PlacementFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    assert_eq!(active.len(), 1);
    let all = store
        .placements(&PlacementFilter { token_id: Some(t.id), include_removed: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[1].placement.removed_at.is_some());
    assert!(matches!(store.add_placement(9999, &spot("x", "y"), Utc::now()).await, Err(StoreError::NotFound(_))));
}

async fn custody_is_ordered(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[hop("generated on honeytrail server")]).await.unwrap();
    store.add_hop(t.id, &hop("sent by email to devops@example.com")).await.unwrap();
    store.add_hop(t.id, &hop("committed to git@example.com:infra/deploy.git")).await.unwrap();
    let hops = store.hops(t.id).await.unwrap();
    let seqs: Vec<i64> = hops.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(hops[1].description, "sent by email to devops@example.com");
    assert_eq!(hops[2].actor.as_deref(), Some("alice"));
}

async fn retire_keeps_history(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[spot("h", "o")], &[hop("generated")]).await.unwrap();
    let at = Utc::now();
    let r = store.retire_token(t.id, at).await.unwrap();
    assert_eq!(r.state, TokenState::Retired);
    assert_eq!(r.retired_at.unwrap().timestamp_millis(), at.timestamp_millis());
    assert_eq!(
        store.placements(&PlacementFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap().len(),
        1
    );
    assert_eq!(store.hops(t.id).await.unwrap().len(), 1);
    let active =
        store.list_tokens(&TokenFilter { state: Some(TokenState::Active), ..Default::default() }).await.unwrap();
    assert!(active.is_empty());
    // Retiring twice is harmless.
    assert_eq!(store.retire_token(t.id, Utc::now()).await.unwrap().retired_at, r.retired_at);
}

async fn rotation_carries_placements(store: Store, _url: String) {
    let old = store.insert_token(&new_token(KEY), &[spot("maria-mbp", "Maria")], &[]).await.unwrap();
    let mut next = new_token("AKIAQYLPMN5HAAAAAAAA");
    next.labels.clear();
    let new = store.record_rotation(old.id, &next, &[hop("generated on honeytrail server")], Utc::now()).await.unwrap();
    assert_eq!(new.rotated_from, Some(old.id));
    assert_eq!(new.labels, old.labels, "labels carry over when none are given");
    assert_eq!(store.token(old.id).await.unwrap().state, TokenState::Retired);
    let carried = store.placements(&PlacementFilter { token_id: Some(new.id), ..Default::default() }).await.unwrap();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].placement.spot.host, "maria-mbp");
    assert!(carried[0].placement.spot.notes.as_deref().unwrap().contains(KEY));
    // The old token keeps its placement: if the old key shows up, we still know where it was.
    assert_eq!(
        store.placements(&PlacementFilter { token_id: Some(old.id), ..Default::default() }).await.unwrap().len(),
        1
    );
}

fn import_rows(n: usize, offset: u64) -> Vec<ImportRow> {
    (0..n)
        .map(|i| ImportRow {
            token: NewToken {
                access_key_id: honeytrail_core::keyid::synthesize(123456789012, offset + i as u64),
                labels: Labels::from([("fleet".into(), "laptops".into())]),
                ..NewToken::default()
            },
            placements: vec![spot(&format!("host-{i}"), "fleet")],
            hops: Vec::new(),
        })
        .collect()
}

async fn bulk_import_is_all_or_nothing(store: Store, _url: String) {
    store.insert_token(&new_token(&honeytrail_core::keyid::synthesize(123456789012, 5)), &[], &[]).await.unwrap();
    let rows = import_rows(20, 0);
    let err = store.import_tokens(&rows, false).await.unwrap_err();
    assert!(matches!(err, StoreError::ImportDuplicates { count: 1, .. }), "{err}");
    assert_eq!(store.list_tokens(&TokenFilter::default()).await.unwrap().len(), 1, "nothing imported");
    let summary = store.import_tokens(&rows, true).await.unwrap();
    assert_eq!((summary.imported, summary.skipped_existing, summary.placements), (19, 1, 19));
    let tokens = store.list_tokens(&TokenFilter::default()).await.unwrap();
    assert_eq!(tokens.len(), 20);
    assert_eq!(tokens[1].kind, TokenKind::AwsImported);
    assert!(!tokens[1].has_secret);
}

async fn bulk_import_of_many_keys(store: Store, _url: String) {
    let rows = import_rows(5000, 1000);
    let summary = store.import_tokens(&rows, false).await.unwrap();
    assert_eq!(summary.imported, 5000);
    let listed = store
        .list_tokens(&TokenFilter { label: Some(("fleet".into(), Some("laptops".into()))), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.len(), 5000);
    let t = store.find_token(&rows[4321].token.access_key_id).await.unwrap();
    let p = store.placements(&PlacementFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    assert_eq!(p[0].placement.spot.host, "host-4321");
    // The match index's read, in chunks that do and do not divide the count.
    for chunk in [1000, 777, 50_000] {
        let mut seen = Vec::new();
        store
            .each_token_identity_in_chunks(0, chunk, |i| seen.push((i.id, i.access_key_id.to_string(), i.retired)))
            .await
            .unwrap();
        assert_eq!(seen.len(), 5000, "chunk {chunk}");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in ID order, each once");
        assert!(seen.iter().all(|(_, _, retired)| !retired));
        assert!(seen.iter().any(|(id, key, _)| *id == t.id && *key == t.access_key_id));
    }
}

/// The match index's change counters move in the same transaction as each
/// change to the token table, and only then.
async fn the_account_pool_counts_what_each_account_holds(store: Store, _url: String) {
    use honeytrail_store::{IntentKind, NewPoolAccount};
    let account = |name: &str, id: &str| NewPoolAccount {
        name: name.into(),
        account_id: id.into(),
        role_arn: Some(format!("arn:aws:iam::{id}:role/honeytrail")),
        profile: None,
        max_users: 3,
        added_by: "ada".into(),
    };
    store.add_pool_account(&account("east", "111111111111")).await.unwrap();
    store.add_pool_account(&account("west", "222222222222")).await.unwrap();
    assert!(store.add_pool_account(&account("east", "333333333333")).await.is_err(), "a name once");
    assert!(store.add_pool_account(&account("north", "111111111111")).await.is_err(), "an account once");
    // Two keys on one user and one on another in east; nothing in west.
    let in_east = |key: &str, user: &str| NewToken {
        iam_user_name: Some(user.into()),
        account_id: Some("111111111111".into()),
        ..new_token(key)
    };
    let a = store.insert_token(&in_east(KEY, "u1"), &[], &[]).await.unwrap();
    store.insert_token(&in_east("AKIAQYLPMN5HHHFPZAM3", "u1"), &[], &[]).await.unwrap();
    store.insert_token(&in_east("AKIAQYLPMN5HHHFPZAM4", "u2"), &[], &[]).await.unwrap();
    let pool = store.pool_accounts().await.unwrap();
    assert_eq!((pool[0].name.as_str(), pool[0].users, pool[0].keys, pool[0].room()), ("east", 2, 3, 1));
    assert_eq!((pool[1].name.as_str(), pool[1].users, pool[1].keys), ("west", 0, 0));
    assert_eq!(store.user_with_one_key(Some("111111111111")).await.unwrap().as_deref(), Some("u2"));
    assert_eq!(store.user_with_one_key(Some("222222222222")).await.unwrap(), None);
    assert_eq!(store.pool_account_holding("222222222222").await.unwrap().unwrap().name, "west");
    assert!(store.pool_account_holding("999999999999").await.unwrap().is_none());
    let refused = store.remove_pool_account("east").await.unwrap_err().to_string();
    assert!(refused.contains("holds 3 live key(s)"), "{refused}");
    store.retire_token(a.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(store.pool_account("east").await.unwrap().keys, 2);
    store.remove_pool_account("west").await.unwrap();
    assert!(store.pool_account("west").await.is_err());
    // Intents: begun, listed once old enough, ended.
    let id = store.begin_aws_intent(IntentKind::Mint, Some("111111111111"), "u3", None, "host pid 1").await.unwrap();
    let open = store.aws_intents(chrono::Utc::now()).await.unwrap();
    assert_eq!((open.len(), open[0].kind, open[0].user_name.as_str()), (1, IntentKind::Mint, "u3"));
    assert!(store.aws_intents(chrono::Utc::now() - chrono::Duration::minutes(10)).await.unwrap().is_empty());
    store.end_aws_intent(id).await.unwrap();
    assert!(store.aws_intents(chrono::Utc::now()).await.unwrap().is_empty());
}

async fn token_changes_are_counted_with_each_change(store: Store, _url: String) {
    let counted = |added, retired| TokenFingerprint { added, retired };
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(0, 0));
    let a = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(1, 0));
    store.import_tokens(&import_rows(30, 1000), false).await.unwrap();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(31, 0));
    // Keys already there are not added again, and a refused import counts nothing.
    store.import_tokens(&import_rows(40, 1000), true).await.unwrap();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(41, 0));
    store.import_tokens(&import_rows(5, 1000), false).await.unwrap_err();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(41, 0));
    store.insert_token(&new_token(KEY), &[], &[]).await.unwrap_err();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(41, 0));
    let b = store.record_rotation(a.id, &new_token("AKIAQYLPMN5HAAAAAAAA"), &[], Utc::now()).await.unwrap();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(42, 1));
    store.retire_token(b.id, Utc::now()).await.unwrap();
    store.retire_token(b.id, Utc::now()).await.unwrap();
    assert_eq!(store.token_fingerprint().await.unwrap(), counted(42, 2), "retiring twice counts once");
}

/// Identities read for the match index come back exactly, whatever their
/// columns hold (the packing must not be fooled by separators in values).
async fn identities_read_back_exactly(store: Store, _url: String) {
    let mut minted = new_token("AKIAQYLPMN5HHHFPZAM3");
    minted.iam_user_arn = Some("arn:aws:iam::123456789012:user/path,with:colons/-:9:x".into());
    minted.account_id = Some("123456789012".into());
    minted.iam_user_name = Some("ünï,cödé:-:".into());
    let a = store.insert_token(&minted, &[], &[]).await.unwrap();
    let b = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    store.retire_token(b.id, Utc::now()).await.unwrap();
    let mut seen = Vec::new();
    store
        .each_token_identity(|i| {
            seen.push((
                i.id,
                i.retired,
                i.access_key_id.to_string(),
                i.iam_user_arn.map(str::to_string),
                i.account_id.map(str::to_string),
                i.iam_user_name.map(str::to_string),
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![
            (a.id, false, minted.access_key_id.clone(), minted.iam_user_arn, minted.account_id, minted.iam_user_name),
            (b.id, true, KEY.to_string(), None, Some("123456789012".into()), Some("payments-s3-sync-prod".into())),
        ]
    );
}

async fn label_filters(store: Store, _url: String) {
    let a = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let mut other = new_token("AKIAQYLPMN5HBBBBBBBB");
    other.labels = Labels::from([("team".into(), "data".into()), ("critical".into(), String::new())]);
    let b = store.insert_token(&other, &[], &[]).await.unwrap();
    let by = |name: &str, value: Option<&str>| TokenFilter {
        label: Some((name.into(), value.map(Into::into))),
        ..Default::default()
    };
    let ids = |ts: Vec<honeytrail_core::Token>| ts.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_tokens(&by("team", Some("payments"))).await.unwrap()), [a.id]);
    assert_eq!(ids(store.list_tokens(&by("team", None)).await.unwrap()), [a.id, b.id]);
    assert_eq!(ids(store.list_tokens(&by("critical", None)).await.unwrap()), [b.id]);
    let listed = store.list_tokens(&by("critical", None)).await.unwrap();
    assert_eq!(listed[0].labels.len(), 2, "all labels of a listed token are returned");
}

fn event(token_id: i64, id: &str, minutes: i64, api: &str, ip: &str) -> TokenEvent {
    TokenEvent {
        event_id: id.into(),
        token_id,
        event_time: chrono::DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap(),
        event_source: "sts.amazonaws.com".into(),
        event_name: api.into(),
        aws_region: Some("us-east-1".into()),
        source_ip: Some(ip.into()),
        user_agent: Some("aws-cli/2.15".into()),
        error_code: None,
        error_message: None,
        access_key_id: Some(KEY.into()),
        principal_arn: None,
        vpc_endpoint: None,
        vpc_endpoint_account: None,
        source: "cloudtrail-file".into(),
        origin: "test".into(),
        raw: "{}".into(),
    }
}

/// An intruder's key makes a run of calls at once. They wait for each
/// other (one incident decision per token at a time) without holding the
/// store's connections, so another key's first call is stored at once. On
/// PostgreSQL the run is held at the token's row lock by another session:
/// before, its calls took every pooled connection while they waited there
/// and the other key's call timed out waiting for one.
async fn a_run_of_one_keys_calls_never_holds_up_another_key(store: Store, url: String) {
    const RUN: usize = 20;
    let a = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let b = store.insert_token(&new_token("AKIAQYLPMN5HBBBBBBBB"), &[], &[]).await.unwrap();
    let window = chrono::Duration::minutes(30);
    let postgres = url.starts_with("postgres");
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    let mut holder = raw.begin().await.unwrap();
    if postgres {
        sqlx::query("SELECT id FROM tokens WHERE id = $1 FOR UPDATE").bind(a.id).fetch_all(&mut *holder).await.unwrap();
    }
    let run: Vec<_> = (0..RUN)
        .map(|i| {
            let store = store.clone();
            let e = event(a.id, &format!("run-{i}"), i as i64, "ListBuckets", "203.0.113.9");
            tokio::spawn(async move { store.record_event(&e, window).await })
        })
        .collect();
    if postgres {
        // Until a call of the run waits at the row lock.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&raw)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no call of the run reached the row lock");
            tokio::task::yield_now().await;
        }
    }
    let other = store.record_event(&event(b.id, "other", 0, "GetCallerIdentity", "198.51.100.7"), window).await;
    assert!(matches!(other, Ok(EventOutcome::Opened(_))), "{other:?}");
    holder.rollback().await.unwrap();
    let mut opened = 0;
    for call in run {
        match call.await.unwrap().unwrap() {
            EventOutcome::Opened(_) => opened += 1,
            EventOutcome::Joined(_) => {}
            EventOutcome::Duplicate => panic!("no call of the run is a duplicate"),
            EventOutcome::Expected(_) => panic!("no run took this key"),
        }
    }
    assert_eq!(opened, 1, "the run makes one incident");
    let incidents = store.incidents(&IncidentFilter { token_id: Some(a.id), ..Default::default() }).await.unwrap();
    assert_eq!((incidents.len(), incidents[0].event_count), (1, RUN as i64));
}

async fn events_group_into_incidents_by_window(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let window = chrono::Duration::minutes(30);
    let first = store.record_event(&event(t.id, "e1", 0, "GetCallerIdentity", "203.0.113.9"), window).await.unwrap();
    let EventOutcome::Opened(incident) = first else { panic!("{first:?}") };
    assert_eq!(
        store.record_event(&event(t.id, "e2", 20, "ListBuckets", "203.0.113.9"), window).await.unwrap(),
        EventOutcome::Joined(incident)
    );
    assert_eq!(
        store.record_event(&event(t.id, "e3", 45, "DescribeInstances", "198.51.100.4"), window).await.unwrap(),
        EventOutcome::Joined(incident)
    );
    // Seen again (another source, a restart): stored once.
    assert_eq!(
        store.record_event(&event(t.id, "e2", 20, "ListBuckets", "203.0.113.9"), window).await.unwrap(),
        EventOutcome::Duplicate
    );
    // Hours later: a new incident.
    let later = store.record_event(&event(t.id, "e4", 300, "GetCallerIdentity", "198.51.100.4"), window).await.unwrap();
    assert!(matches!(later, EventOutcome::Opened(id) if id != incident), "{later:?}");
    let i = store.incident(incident).await.unwrap();
    assert_eq!(i.event_count, 3);
    assert_eq!(i.access_key_id, KEY);
    assert_eq!((i.last_seen - i.first_seen).num_minutes(), 45);
    let seen = store.incident_events(incident).await.unwrap();
    assert!(
        seen.iter().all(|(_, at)| *at > Utc::now() - chrono::Duration::minutes(5)),
        "seen_at is when honeytrail stored it"
    );
    let events: Vec<TokenEvent> = seen.into_iter().map(|(e, _)| e).collect();
    let names: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(names, ["GetCallerIdentity", "ListBuckets", "DescribeInstances"]);
    let activity = honeytrail_core::incident::activity(&events);
    assert_eq!(activity.source_ips, ["203.0.113.9", "198.51.100.4"]);
    assert_eq!(store.incidents(&IncidentFilter::default()).await.unwrap().len(), 2);
}

async fn incident_workflow_is_recorded(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let window = chrono::Duration::hours(1);
    let EventOutcome::Opened(id) =
        store.record_event(&event(t.id, "e1", 0, "ListBuckets", "203.0.113.9"), window).await.unwrap()
    else {
        panic!()
    };
    store.change_incident_state(id, IncidentState::Acknowledged, "bob", None).await.unwrap();
    store.add_incident_note(id, "bob", "asked Maria: was this you?").await.unwrap();
    let fp = store
        .change_incident_state(id, IncidentState::FalsePositive, "bob", Some("Maria ran aws s3 ls by mistake"))
        .await
        .unwrap();
    assert_eq!(fp.state, IncidentState::FalsePositive);
    let err = store.change_incident_state(id, IncidentState::Open, "bob", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    // A false-positive incident does not swallow new activity.
    let next = store.record_event(&event(t.id, "e2", 5, "ListBuckets", "203.0.113.9"), window).await.unwrap();
    assert!(matches!(next, EventOutcome::Opened(n) if n != id), "{next:?}");
    let log = store.incident_log(id).await.unwrap();
    let kinds: Vec<&str> = log.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "state", "note", "state"]);
    assert_eq!(log[3].note.as_deref(), Some("Maria ran aws s3 ls by mistake"));
    assert_eq!(log[3].to_state, Some(IncidentState::FalsePositive));
    let open = store.incidents(&IncidentFilter { unresolved: true, ..Default::default() }).await.unwrap();
    assert_eq!(open.len(), 1);
    // A retired token that shows up is flagged.
    store.retire_token(t.id, Utc::now()).await.unwrap();
    let EventOutcome::Opened(r) =
        store.record_event(&event(t.id, "e3", 600, "ListBuckets", "203.0.113.9"), window).await.unwrap()
    else {
        panic!()
    };
    assert!(store.incident(r).await.unwrap().token_retired);
}

async fn owner_questions_are_answered_once(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let EventOutcome::Opened(id) = store
        .record_event(&event(t.id, "q1", 0, "ListBuckets", "203.0.113.9"), chrono::Duration::hours(1))
        .await
        .unwrap()
    else {
        panic!()
    };
    let ttl = chrono::Duration::days(14);
    let token = store.owner_question_token(id, "maria@acme.test", ttl).await.unwrap();
    let again = store.owner_question_token(id, "maria@acme.test", ttl).await.unwrap();
    assert_eq!(token.expose(), again.expose(), "a retried email carries the same link");
    let q = store.owner_question(token.expose()).await.unwrap();
    assert_eq!((q.incident_id, q.owner.as_str(), q.answered_at), (id, "maria@acme.test", None));
    assert!(matches!(store.owner_question("htq_forged").await, Err(StoreError::NotFound(_))));
    let answered =
        store.answer_owner_question(token.expose(), true, Some(" testing the CLI "), "192.0.2.1").await.unwrap();
    assert_eq!((answered.answer.as_deref(), answered.comment.as_deref()), (Some("yes"), Some("testing the CLI")));
    let err = store.answer_owner_question(token.expose(), false, None, "192.0.2.1").await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    let log = store.incident_log(id).await.unwrap();
    assert_eq!(log.last().unwrap().note.as_deref(), Some("yes, it was me: testing the CLI"));
    assert_eq!(store.incident(id).await.unwrap().state, IncidentState::Open);
    let expired = store.owner_question_token(id, "bob@acme.test", chrono::Duration::seconds(-1)).await.unwrap();
    let err = store.answer_owner_question(expired.expose(), true, None, "192.0.2.1").await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    // Channel references (a Jira issue key) are kept per channel and incident.
    let channel = store.add_channel("jira", "jira", &honeytrail_core::Secret::new("{}")).await.unwrap();
    assert_eq!(store.channel_ref(channel.id, id).await.unwrap(), None);
    store.set_channel_ref(channel.id, id, "SEC-7").await.unwrap();
    assert_eq!(store.channel_ref(channel.id, id).await.unwrap().as_deref(), Some("SEC-7"));
}

async fn update_alerts_keep_their_interval(store: Store, _url: String) {
    let store = store.with_update_interval(chrono::Duration::hours(1));
    let jsonl = store.add_channel("siem", "jsonl", &honeytrail_core::Secret::new("{}")).await.unwrap();
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let window = chrono::Duration::hours(1);
    store.record_event(&event(t.id, "u1", 0, "ListBuckets", "203.0.113.9"), window).await.unwrap();
    assert_eq!(
        store.fan_out(&honeytrail_core::enrich::Enricher::default()).await.unwrap(),
        1,
        "the opening goes out at once"
    );
    store.record_event(&event(t.id, "u2", 1, "ListUsers", "203.0.113.9"), window).await.unwrap();
    store.record_event(&event(t.id, "u3", 2, "ListRoles", "203.0.113.9"), window).await.unwrap();
    assert_eq!(
        store.fan_out(&honeytrail_core::enrich::Enricher::default()).await.unwrap(),
        0,
        "updates wait for the interval"
    );
    let EventOutcome::Joined(id) =
        store.record_event(&event(t.id, "u4", 3, "GetUser", "203.0.113.9"), window).await.unwrap()
    else {
        panic!()
    };
    store.change_incident_state(id, IncidentState::Acknowledged, "bob", None).await.unwrap();
    assert_eq!(
        store.fan_out(&honeytrail_core::enrich::Enricher::default()).await.unwrap(),
        1,
        "a state change is not held back"
    );
    let pending = store.deliveries("pending").await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|d| d.channel_id == jsonl.id));
}

async fn users_sessions_api_tokens_and_audit(store: Store, _url: String) {
    use honeytrail_core::access::Role;
    let rob = store.add_user("rob", Role::Responder, "$argon2id$fake", true).await.unwrap();
    assert!(rob.must_change_password);
    assert!(matches!(store.add_user("rob", Role::Viewer, "x", false).await, Err(StoreError::Refused(_))));
    assert!(matches!(store.add_user("bad name!", Role::Viewer, "x", false).await, Err(StoreError::Refused(_))));
    assert_eq!(store.user_count().await.unwrap(), 1);
    let (u, hash) = store.user_credentials("rob").await.unwrap().unwrap();
    assert_eq!((u.id, hash.as_str()), (rob.id, "$argon2id$fake"));
    assert!(store.user_credentials("nobody").await.unwrap().is_none());
    store.set_password(rob.id, "$argon2id$new", false).await.unwrap();
    assert!(!store.user("rob").await.unwrap().must_change_password);

    let session = store.create_session(rob.id, chrono::Duration::hours(1)).await.unwrap();
    let live = store.session(session.expose()).await.unwrap().unwrap();
    assert_eq!(live.user.name, "rob");
    assert!(!live.csrf.is_empty());
    assert!(store.session("hts_forged").await.unwrap().is_none());
    let expired = store.create_session(rob.id, chrono::Duration::seconds(-1)).await.unwrap();
    assert!(store.session(expired.expose()).await.unwrap().is_none());
    // A password change or reset ends every session of the user.
    let other = store.create_session(rob.id, chrono::Duration::hours(1)).await.unwrap();
    store.set_password(rob.id, "$argon2id$reset", true).await.unwrap();
    assert!(store.session(session.expose()).await.unwrap().is_none());
    assert!(store.session(other.expose()).await.unwrap().is_none());
    let session = store.create_session(rob.id, chrono::Duration::hours(1)).await.unwrap();

    let (t, secret) = store.create_api_token(&rob, "soar", Role::Viewer).await.unwrap();
    assert!(secret.expose().starts_with("htk_"));
    assert!(matches!(store.create_api_token(&rob, "x", Role::Admin).await, Err(StoreError::Refused(_))));
    let (user, role) = store.api_token_user(secret.expose()).await.unwrap().unwrap();
    assert_eq!((user.name.as_str(), role), ("rob", Role::Viewer));
    assert!(store.api_tokens(Some("rob")).await.unwrap()[0].last_used_at.is_some());
    assert!(store.api_tokens(Some("someone-else")).await.unwrap().is_empty());
    assert_eq!(store.api_tokens(None).await.unwrap().len(), 1);
    store.revoke_api_token(t.id, Some("rob")).await.unwrap();
    assert!(store.api_token_user(secret.expose()).await.unwrap().is_none());
    assert!(matches!(store.revoke_api_token(t.id, None).await, Err(StoreError::Refused(_))));

    // Disabling ends sessions and stops tokens.
    let (_, second) = store.create_api_token(&rob, "ci", Role::Responder).await.unwrap();
    store.disable_user("rob").await.unwrap();
    assert!(store.session(session.expose()).await.unwrap().is_none());
    assert!(store.api_token_user(second.expose()).await.unwrap().is_none());

    store.audit("rob", "incident.state", "incident #1", Some("acknowledged"), Some("127.0.0.1")).await.unwrap();
    store.audit("ada", "user.create", "vic", None, None).await.unwrap();
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].actor.as_str(), log[1].from.as_deref()), ("ada", Some("127.0.0.1")));
}

async fn reports_and_dashboard_queries(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let window = chrono::Duration::hours(1);
    store.record_event(&event(t.id, "d1", 0, "ListBuckets", "203.0.113.9"), window).await.unwrap();
    let report = store.report_found_key(t.id, "erin", "found on a USB stick").await.unwrap();
    // The same person again: the same report, no new incident or alert.
    for _ in 0..30 {
        assert_eq!(store.report_found_key(t.id, "erin", "found it again").await.unwrap(), report);
    }
    let other = store.report_found_key(t.id, "fred", "on the printer").await.unwrap();
    assert_ne!(other, report, "another person's report is their own");
    let incident = store.incident(report).await.unwrap();
    assert_eq!(incident.kind, honeytrail_core::incident::IncidentKind::Report);
    // A later use of the key does not join the report: it joins the open use incident.
    let joined = store.record_event(&event(t.id, "d2", 1, "ListUsers", "203.0.113.9"), window).await.unwrap();
    assert!(matches!(joined, EventOutcome::Joined(id) if id != report), "{joined:?}");
    let recent = store.recent_events(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].access_key_id, KEY);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.incidents, vec![("open".to_string(), 3)]);
    assert_eq!(stats.tokens, vec![("active".to_string(), 1)]);
    store.mark_s3_object_read("s3://b/p/", "p/a.json.gz", None).await.unwrap();
    let sources = store.s3_sources().await.unwrap();
    assert_eq!((sources[0].source.as_str(), sources[0].objects), ("s3://b/p/", 1));
    let channel = store.add_channel("soc", "jsonl", &honeytrail_core::Secret::new("{}")).await.unwrap();
    let off = store.update_channel("soc", None, Some(false)).await.unwrap();
    assert!(!off.enabled && channel.enabled);
    store.fan_out(&honeytrail_core::enrich::Enricher::default()).await.unwrap();
    assert!(store.incident_deliveries(report).await.unwrap().is_empty(), "a disabled channel gets nothing");
}

fn audit_record(action: &str, target: &str) -> AuditRecord {
    AuditRecord {
        actor: "alice".into(),
        action: action.into(),
        target: target.into(),
        detail: Some("why".into()),
        from: Some("127.0.0.1".into()),
    }
}

/// A change made through an audited handle writes its audit entry in the
/// same transaction: a change the store refuses leaves no entry, and one
/// handle writes its entry once, however many changes follow.
async fn audit_entries_commit_with_their_change(store: Store, _url: String) {
    let token = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    // Refused (the key exists): neither the change nor the audit entry.
    let refused = store.audited(audit_record("token.import", KEY)).insert_token(&new_token(KEY), &[], &[]).await;
    assert!(matches!(refused, Err(StoreError::Duplicate { .. })), "{refused:?}");
    assert!(store.audit_log(10).await.unwrap().is_empty());
    // A transaction (an event-free state change is refused too).
    let audited = store.audited(audit_record("incident.state", "incident #99"));
    let missing = audited.change_incident_state(99, IncidentState::Acknowledged, "alice", None).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    assert!(store.audit_log(10).await.unwrap().is_empty());
    // Accepted: one entry, with every field.
    let audited = store.audited(audit_record("placement.add", KEY));
    let p = audited.add_placement(token.id, &spot("web-1", "ops"), Utc::now()).await.unwrap();
    audited.remove_placement(p.id, Utc::now()).await.unwrap();
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    let e = &log[0];
    assert_eq!(
        (e.actor.as_str(), e.action.as_str(), e.target.as_str(), e.detail.as_deref(), e.from.as_deref()),
        ("alice", "placement.add", KEY, Some("why"), Some("127.0.0.1"))
    );
    // A single-statement write carries it too.
    store.audited(audit_record("runbook.remove", "none")).remove_runbook("none").await.ok();
    store
        .audited(audit_record("runbook.set", "default"))
        .set_runbook(&honeytrail_store::StoredRunbook {
            name: "default".into(),
            selector: "default".into(),
            template: "x".into(),
        })
        .await
        .unwrap();
    let actions: Vec<String> = store.audit_log(10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"runbook.set".to_string()), "{actions:?}");
    assert!(!actions.contains(&"runbook.remove".to_string()), "nothing was removed: {actions:?}");
}

/// Walks a keyset-paged list to its end: `page(after)` gives at most
/// `limit` items and each item's position is `at(item)`.
async fn walk<T, P: Clone, F: std::future::Future<Output = Vec<T>>>(
    limit: usize,
    mut page: impl FnMut(Option<P>) -> F,
    at: impl Fn(&T) -> P,
) -> Vec<T> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let items = page(after.clone()).await;
        assert!(items.len() <= limit);
        let done = items.len() < limit;
        after = items.last().map(&at);
        all.extend(items);
        if done {
            return all;
        }
    }
}

async fn every_list_pages_by_keyset(store: Store, _url: String) {
    // One incident of 620 events, two at each event time, each with its own
    // user agent: pages by (event time, row), a bounded activity.
    let t = store.insert_token(&new_token(KEY), &[], &[]).await.unwrap();
    let window = chrono::Duration::days(1);
    for n in 0..620i64 {
        let mut e = event(
            t.id,
            &format!("p{n}"),
            n / 2,
            ["ListBuckets", "GetCallerIdentity", "ListUsers"][(n % 3) as usize],
            "203.0.113.9",
        );
        e.user_agent = Some(format!("agent-{n:04}"));
        store.record_event(&e, window).await.unwrap();
    }
    let incident = store.incidents(&IncidentFilter::default()).await.unwrap()[0].id;
    let st = &store;
    let events = walk(
        90,
        |after| async move { st.incident_events_page(incident, after, 90).await.unwrap() },
        |e| (e.event.event_time.timestamp_millis(), e.id),
    )
    .await;
    let ids: Vec<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
    let expected: Vec<String> = (0..620).map(|n| format!("p{n}")).collect();
    assert_eq!(ids, expected, "every event once, in event-time order, ties by row");
    let latest = store.incident_events_latest(incident, 250).await.unwrap();
    assert_eq!(latest.iter().map(|e| e.event.event_id.clone()).collect::<Vec<_>>(), expected[370..]);
    let activity = store.incident_activity(incident).await.unwrap();
    assert_eq!(activity.user_agents.len(), honeytrail_core::incident::ACTIVITY_MAX);
    assert_eq!(activity.user_agents[0], "agent-0000", "ties in byte order");
    assert_eq!((activity.distinct.user_agents, activity.distinct.apis), (620, 3));
    assert_eq!(
        activity.apis,
        ["GetCallerIdentity", "ListBuckets", "ListUsers"],
        "most frequent first, ties in byte order"
    );
    let all: Vec<TokenEvent> = events.into_iter().map(|e| e.event).collect();
    assert_eq!(activity, honeytrail_core::incident::activity(&all), "counted in the database as in memory");

    // Deliveries: one per incident, newest first.
    store.add_channel("siem", "jsonl", &Secret::new("{}")).await.unwrap();
    for n in 0..30u64 {
        let key = honeytrail_core::keyid::synthesize(123456789012, n);
        let token = store.insert_token(&new_token(&key), &[], &[]).await.unwrap();
        store.record_event(&event(token.id, &format!("d{n}"), 0, "ListBuckets", "203.0.113.9"), window).await.unwrap();
    }
    store.fan_out(&honeytrail_core::enrich::Enricher::default()).await.unwrap();
    let pending =
        walk(7, |before| async move { st.deliveries_page("pending", before, 7).await.unwrap() }, |d| d.id).await;
    let mut ids: Vec<i64> = pending.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), store.deliveries("pending").await.unwrap().len());
    assert!(ids.len() >= 31, "{}", ids.len());
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, none twice");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), pending.len());

    // Users by name, the audit log newest first.
    for name in ["zoe", "adam", "mia", "bob", "eve", "li", "ana", "kim", "tom", "ida", "max", "ola"] {
        store.add_user(name, honeytrail_core::access::Role::Viewer, "$argon2id$fake", true).await.unwrap();
    }
    let users = walk(
        5,
        |after: Option<String>| async move { st.users_page(after.as_deref(), 5).await.unwrap() },
        |u| u.name.clone(),
    )
    .await;
    let names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!((names.len(), &names), (12, &sorted));
    for n in 0..25 {
        store.audit("alice", "test.action", &format!("thing {n}"), None, None).await.unwrap();
    }
    let entries = walk(10, |before| async move { st.audit_page(before, 10).await.unwrap() }, |e| e.id).await;
    assert_eq!(entries.len(), store.audit_log(100_000).await.unwrap().len());
    assert!(entries.len() >= 25 && entries.windows(2).all(|w| w[0].id > w[1].id));
}

async fn enrolment_secrets_are_hashed_limited_and_spent_once(store: Store, url: String) {
    let labels: honeytrail_core::Labels = [("fleet".to_string(), "web".to_string())].into();
    let in_a_week = Utc::now() + chrono::Duration::days(7);
    let (two, secret) =
        store.create_enrolment(Some(2), in_a_week, &labels, Some("laptop"), &Guard::default(), "admin").await.unwrap();
    assert_eq!(two.template.as_deref(), Some("laptop"));
    assert!(matches!(
        store.create_enrolment(Some(2), in_a_week, &labels, Some("no-such"), &Guard::default(), "admin").await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!((two.uses, two.used, two.state(Utc::now())), (Some(2), 0, "active"));
    assert_eq!(two.labels, labels);
    // Only the hash is stored.
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM enrollment_secrets").fetch_one(&raw).await.unwrap();
    assert_ne!(stored, secret.expose());
    assert_eq!(stored, honeytrail_core::bearer_hash(secret.expose()));

    // Ten hosts race for two uses: exactly two get in.
    let mut racers = Vec::new();
    for _ in 0..10 {
        let (store, secret) = (store.clone(), secret.expose().to_string());
        racers.push(tokio::spawn(async move { store.use_enrolment(&secret).await }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(e) => {
                won += 1;
                assert_eq!(e.id, two.id);
            }
            Err(StoreError::Refused(why)) => assert!(why.contains("used up"), "{why}"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 2);
    let listed = store.enrolments().await.unwrap();
    assert_eq!((listed[0].used, listed[0].state(Utc::now())), (2, "used up"));

    // Unknown, revoked and out-of-range secrets say why.
    let err = store.use_enrolment("not-a-secret").await.unwrap_err();
    assert!(err.to_string().contains("not known"), "{err}");
    let (open_ended, other) =
        store.create_enrolment(None, in_a_week, &Default::default(), None, &Guard::default(), "admin").await.unwrap();
    for _ in 0..3 {
        store.use_enrolment(other.expose()).await.unwrap();
    }
    store.revoke_enrolment(open_ended.id).await.unwrap();
    let err = store.use_enrolment(other.expose()).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(matches!(store.revoke_enrolment(open_ended.id).await, Err(StoreError::Refused(_))));
    assert!(matches!(store.revoke_enrolment(9999).await, Err(StoreError::NotFound(_))));
    for (uses, expires) in [
        (Some(0), in_a_week),
        (Some(1), Utc::now() - chrono::Duration::minutes(1)),
        (None, Utc::now() + chrono::Duration::days(91)),
    ] {
        assert!(matches!(
            store.create_enrolment(uses, expires, &Default::default(), None, &Guard::default(), "a").await,
            Err(StoreError::Refused(_))
        ));
    }
    // An expired one is refused as expired.
    let (soon, secret) = store
        .create_enrolment(
            Some(5),
            Utc::now() + chrono::Duration::milliseconds(300),
            &Default::default(),
            None,
            &Guard::default(),
            "a",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let err = store.use_enrolment(secret.expose()).await.unwrap_err();
    assert!(err.to_string().contains(&format!("#{} is expired", soon.id)), "{err}");
}

async fn placement_templates_start_shipped_and_are_validated(store: Store, _url: String) {
    use honeytrail_core::template::{shipped, Credential, PlacementTemplate};
    assert_eq!(store.templates().await.unwrap(), shipped().into_iter().rev().collect::<Vec<_>>(), "laptop, server");
    let env = PlacementTemplate {
        name: "app-env".into(),
        format: "dotenv".into(),
        path: "/opt/app/.env".into(),
        profile: None,
        owner: Some("deploy".into()),
        mode: 0o640,
        credential: Credential::Key,
    };
    assert_eq!(store.put_template(&env, "ada").await.unwrap(), env);
    let changed = PlacementTemplate { mode: 0o600, credential: Credential::Session, ..env.clone() };
    assert_eq!(store.put_template(&changed, "ada").await.unwrap(), changed, "replaced, session credentials kept");
    let cache = PlacementTemplate { format: "aws-cli-cache".into(), ..env.clone() };
    assert!(
        matches!(store.put_template(&cache, "ada").await, Err(StoreError::Refused(m)) if m.contains("session")),
        "a CLI cache holds sessions only"
    );
    let bad = PlacementTemplate { path: "/opt/../etc/shadow".into(), ..env.clone() };
    assert!(matches!(store.put_template(&bad, "ada").await, Err(StoreError::Refused(_))));
    assert_eq!(store.templates().await.unwrap().len(), 3);
    store.remove_template("app-env").await.unwrap();
    assert!(matches!(store.remove_template("app-env").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.template("app-env").await, Err(StoreError::NotFound(_))));
}

fn host(name: &str) -> honeytrail_core::fleet::HostFacts {
    honeytrail_core::fleet::HostFacts {
        hostname: name.into(),
        machine_id: Some(format!("{name}-machine")),
        dmi_serial: Some("SN-1".into()),
        os: Some("Debian GNU/Linux 12".into()),
        instance_id: Some(format!("i-{name}")),
        agent_version: Some("0.1.0".into()),
    }
}

/// A session template's host gets the session canary it brought, not a pool
/// key; a refresh records the new digests and expiry on the same files and
/// placements (no new placement per refresh), and only once its session was sent.
async fn session_canaries_are_refreshed_in_place(store: Store, _url: String) {
    use honeytrail_core::fleet::{CommandKind, PlacedFile};
    use honeytrail_core::template::{Credential, PlacementTemplate};
    use honeytrail_store::SessionHandout;

    let template = PlacementTemplate {
        name: "instance-cache".into(),
        format: "aws-cli-cache".into(),
        path: "/root/.aws/cli/cache/5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6.json".into(),
        profile: None,
        owner: None,
        mode: 0o600,
        credential: Credential::Session,
    };
    store.put_template(&template, "admin").await.unwrap();
    let (_, secret) = store
        .create_enrolment(
            Some(3),
            Utc::now() + chrono::Duration::days(1),
            &Labels::new(),
            Some("instance-cache"),
            &Guard::default(),
            "admin",
        )
        .await
        .unwrap();
    // A session template never takes a pool key (the pool is empty here), and
    // needs the session it was given.
    assert!(matches!(
        store.enrol_agent(secret.expose(), &host("s0"), None, None, "s0", "server", None).await,
        Err(StoreError::Refused(m)) if m.contains("session")
    ));
    let arn = "arn:aws:sts::123456789012:assumed-role/app-instance-role/i-0a1b2c3d4e5f67890";
    let token = store
        .insert_token(
            &NewToken {
                kind: Some(TokenKind::AwsSession),
                access_key_id: "ASIAQYLPMN5HPLZXQ3NB".into(),
                iam_user_arn: Some(arn.into()),
                iam_user_name: None,
                secret: None,
                ..new_token("ASIAQYLPMN5HPLZXQ3NB")
            },
            &[],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.token(token.id).await.unwrap().kind, TokenKind::AwsSession);
    let first = Utc::now() + chrono::Duration::hours(6);
    let handout = SessionHandout { token_id: token.id, expires_at: first };
    let enrolled =
        store.enrol_agent(secret.expose(), &host("s1"), None, None, "s1", "server", Some(&handout)).await.unwrap();
    assert_eq!(enrolled.token.id, token.id);
    assert_eq!(enrolled.agent.session_expires_at.map(|t| t.timestamp()), Some(first.timestamp()));
    let file = |d: char| PlacedFile {
        path: template.path.clone(),
        user: Some("root".into()),
        digest: format!("sha256:{}", d.to_string().repeat(64)),
    };
    store.confirm_agent(enrolled.agent.id, &[file('a')]).await.unwrap();

    let refresh = store.request_command(enrolled.agent.id, CommandKind::Refresh, "fleet").await.unwrap();
    assert!(
        matches!(
            store.finish_command(enrolled.agent.id, refresh.id, true, &[file('b')], &[], None).await,
            Err(StoreError::Refused(_))
        ),
        "nothing was sent yet"
    );
    let second = first + chrono::Duration::hours(3);
    store.session_sent(refresh.id, second).await.unwrap();
    let elsewhere = PlacedFile { path: "/etc/passwd".into(), ..file('b') };
    assert!(
        store.finish_command(enrolled.agent.id, refresh.id, true, &[elsewhere], &[], None).await.is_err(),
        "a refresh writes only where the bait is"
    );
    let (done, _) = store.finish_command(enrolled.agent.id, refresh.id, true, &[file('b')], &[], None).await.unwrap();
    assert_eq!(done.state, "done");
    assert!(store.session_sent(refresh.id, second).await.is_err(), "a finished refresh sends nothing more");
    let after = store.agent(enrolled.agent.id).await.unwrap();
    assert_eq!(after.session_expires_at.map(|t| t.timestamp()), Some(second.timestamp()));
    assert_eq!(after.token_id, Some(token.id), "the same canary");
    let live: Vec<_> = after.files.iter().filter(|f| f.removed_at.is_none()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].digest, file('b').digest);
    let placed = store.placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() }).await.unwrap();
    assert_eq!(placed.len(), 1, "one placement, however often it is refreshed");
    assert!(placed[0].placement.removed_at.is_none());
}

async fn enrolments_take_distinct_pool_keys_and_record_what_hosts_confirm(store: Store, _url: String) {
    use honeytrail_core::fleet::{CommandKind, FileReport, PlacedFile, Presence};

    let labels = Labels::from([("team".into(), "web".into())]);
    let (_, secret) = store
        .create_enrolment(
            Some(6),
            Utc::now() + chrono::Duration::days(1),
            &labels,
            Some("laptop"),
            &Guard::default(),
            "admin",
        )
        .await
        .unwrap();
    // An empty pool refuses, and spends no use.
    assert!(matches!(
        store.enrol_agent(secret.expose(), &host("h0"), None, None, "c0", "server", None).await,
        Err(StoreError::PoolEmpty)
    ));
    assert_eq!(store.enrolments().await.unwrap()[0].used, 0);
    for i in 0..5 {
        let key = format!("AKIAQYLPMN5HHHFPZA{i:02}");
        store
            .insert_pool_token(&NewToken { labels: Labels::new(), ..new_token(&key) }, &hop("generated"))
            .await
            .unwrap();
    }
    assert_eq!(store.pool_size().await.unwrap(), 5);
    // Hostile host facts are refused before anything is spent.
    let mut bad = host("h\u{1b}[2J");
    assert!(matches!(
        store.enrol_agent(secret.expose(), &bad, None, None, "cx", "server", None).await,
        Err(StoreError::Refused(_))
    ));
    bad.hostname = "x".repeat(300);
    assert!(store.enrol_agent(secret.expose(), &bad, None, None, "cx", "server", None).await.is_err());
    assert_eq!(store.enrolments().await.unwrap()[0].used, 0);

    // Five hosts race for five keys (and six uses): each gets its own.
    let mut racers = Vec::new();
    for i in 0..5 {
        let (store, secret) = (store.clone(), secret.expose().to_string());
        racers.push(tokio::spawn(async move {
            store
                .enrol_agent(
                    &secret,
                    &host(&format!("h{i}")),
                    Some("192.0.2.7"),
                    None,
                    &format!("cred-{i}"),
                    "server",
                    None,
                )
                .await
        }));
    }
    let mut keys = Vec::new();
    for r in racers {
        let e = r.await.unwrap().unwrap();
        assert_eq!(e.agent.state, AgentState::Enrolling);
        assert_eq!(e.agent.template.name, "laptop");
        assert_eq!(e.token.labels.get("team").map(String::as_str), Some("web"));
        let hops = store.hops(e.token.id).await.unwrap();
        assert_eq!(hops.len(), 2);
        assert!(hops[1].description.contains(&format!("delivered to host {}", e.agent.host.hostname)));
        assert!(hops[1].description.contains("from 192.0.2.7"));
        keys.push(e.token.access_key_id);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5, "no key handed out twice");
    assert_eq!(store.pool_size().await.unwrap(), 0);
    assert!(matches!(
        store.enrol_agent(secret.expose(), &host("h9"), None, None, "c9", "server", None).await,
        Err(StoreError::PoolEmpty)
    ));
    assert_eq!(store.enrolments().await.unwrap()[0].used, 5);

    // The credential finds its agent; only its hash is kept.
    let agent = store.agent_by_credential("cred-0").await.unwrap().expect("agent");
    assert!(store.agent_by_credential("cred-x").await.unwrap().is_none());
    let digest = format!("sha256:{}", "a".repeat(64));
    let files = [
        PlacedFile { path: "/home/maria/.aws/credentials".into(), user: Some("maria".into()), digest: digest.clone() },
        PlacedFile { path: "/root/.aws/credentials".into(), user: Some("root".into()), digest },
    ];
    let active = store.confirm_agent(agent.id, &files).await.unwrap();
    assert_eq!(active.state, AgentState::Active);
    assert_eq!(active.files.len(), 2);
    assert!(store.confirm_agent(agent.id, &files).await.is_err(), "a confirmation is not replayed");
    let token_id = active.token_id.unwrap();
    let placed = store.placements(&PlacementFilter { token_id: Some(token_id), ..Default::default() }).await.unwrap();
    assert_eq!(placed.len(), 2);
    let p = &placed[0].placement.spot;
    assert_eq!(
        (p.host.as_str(), p.owner.as_deref(), p.serial.as_deref()),
        (agent.host.hostname.as_str(), Some("maria"), Some("SN-1"))
    );
    assert_eq!(p.labels.get("machine-id"), agent.host.machine_id.as_ref());
    assert_eq!(active.bait_state(), "ok");

    // A heartbeat: presence changes are returned once.
    let report = |presence| vec![FileReport { path: "/root/.aws/credentials".into(), presence, seen: None }];
    let changed = store.record_heartbeat(agent.id, &report(Presence::Altered)).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!((changed[0].before, changed[0].file.presence), (Presence::Present, Presence::Altered));
    assert!(store.record_heartbeat(agent.id, &report(Presence::Altered)).await.unwrap().is_empty());
    assert_eq!(store.agent(agent.id).await.unwrap().bait_state(), "tampered");

    // What an agent has filed, for its quotas: records lately, bytes kept.
    use honeytrail_core::evidence::{Access, AccessSource};
    use honeytrail_store::NewAccess;
    assert_eq!(store.agent_evidence_usage(agent.id, Utc::now() - chrono::Duration::hours(1)).await.unwrap(), (0, 0));
    let seen = Utc::now();
    let reads: Vec<NewAccess> = (0..2)
        .map(|i| NewAccess {
            access: Access {
                id: format!("q{i}"),
                at: seen,
                last_at: seen,
                count: 1,
                path: "/root/.aws/credentials".into(),
                host: None,
                source: AccessSource::Inotify,
                process: None,
                by_owner: false,
            },
            host: agent.host.hostname.clone(),
            agent_id: Some(agent.id),
            matched: Some((token_id, placed[0].placement.id)),
            quiet: false,
        })
        .collect();
    assert_eq!(store.file_access(&reads).await.unwrap(), 2);
    let (recent, bytes) = store.agent_evidence_usage(agent.id, Utc::now() - chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(recent, 2);
    let one = serde_json::to_string(&reads[0].access).unwrap().len() as i64;
    assert!(bytes >= 2 * one - 2 && bytes <= 2 * one + 2, "{bytes} vs {one}");
    assert_eq!(store.agent_evidence_usage(agent.id, Utc::now() + chrono::Duration::hours(1)).await.unwrap().0, 0);
    store.count_refused_evidence(agent.id, 7).await.unwrap();
    store.count_refused_evidence(agent.id, 3).await.unwrap();
    assert_eq!(store.agent(agent.id).await.unwrap().evidence_refused, 10);
    assert_eq!(store.evidence_refused().await.unwrap(), 10);

    // Stale once per silence; unconfirmed agents are found.
    let later = Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(store.mark_stale(later).await.unwrap().len(), 1);
    assert!(store.mark_stale(later).await.unwrap().is_empty());
    assert_eq!(store.stale_count().await.unwrap(), 1);
    assert_eq!(store.unconfirmed_agents(later).await.unwrap().len(), 4);
    let other = store.agent_by_credential("cred-1").await.unwrap().unwrap();
    assert_eq!(store.fail_agent(other.id, "gave up").await.unwrap().state, AgentState::Failed);
    assert!(store.agent_by_credential("cred-1").await.unwrap().is_none(), "a failed agent's credential is dead");

    // A rotation: one open command at a time, the key from the pool, files moved to it.
    let rotate = store.request_command(agent.id, CommandKind::Rotate, "alice").await.unwrap();
    assert!(store.request_command(agent.id, CommandKind::Remove, "alice").await.is_err());
    assert!(matches!(store.key_for_rotation(rotate.id).await, Err(StoreError::PoolEmpty)));
    store.insert_pool_token(&new_token("AKIAQYLPMN5HHHFPZB01"), &hop("generated")).await.unwrap();
    let new_id = store.key_for_rotation(rotate.id).await.unwrap();
    assert_eq!(store.key_for_rotation(rotate.id).await.unwrap(), new_id, "asked again, the same key");
    let (done, before) = store.finish_command(agent.id, rotate.id, true, &files, &[], None).await.unwrap();
    assert_eq!((done.state.as_str(), before.token_id), ("done", Some(token_id)));
    let rotated = store.agent(agent.id).await.unwrap();
    assert_eq!(rotated.token_id, Some(new_id));
    assert_eq!(rotated.files.iter().filter(|f| f.removed_at.is_none()).count(), 2);
    assert!(store
        .placements(&PlacementFilter { token_id: Some(token_id), ..Default::default() })
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.placements(&PlacementFilter { token_id: Some(new_id), ..Default::default() }).await.unwrap().len(),
        2
    );
    // A removal that failed part-way: the file it cleared is closed, the
    // other kept, the key and the agent live.
    let partial = store.request_command(agent.id, CommandKind::Remove, "alice").await.unwrap();
    let cleared = ["/root/.aws/credentials".to_string()];
    let (failed, _) =
        store.finish_command(agent.id, partial.id, false, &files[..1], &cleared, Some("2 hard links")).await.unwrap();
    assert_eq!(failed.state, "failed");
    let half = store.agent(agent.id).await.unwrap();
    assert_eq!(half.state, AgentState::Active);
    let open: Vec<&str> = half.files.iter().filter(|f| f.removed_at.is_none()).map(|f| f.path.as_str()).collect();
    assert_eq!(open, ["/home/maria/.aws/credentials"]);
    let left = store.placements(&PlacementFilter { token_id: Some(new_id), ..Default::default() }).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].placement.spot.path, "/home/maria/.aws/credentials");
    // A failed rotation changes no file.
    let rotate_failed = store.request_command(agent.id, CommandKind::Rotate, "alice").await.unwrap();
    store.finish_command(agent.id, rotate_failed.id, false, &[], &cleared, Some("no")).await.unwrap();
    assert_eq!(store.agent(agent.id).await.unwrap().files.iter().filter(|f| f.removed_at.is_none()).count(), 1);
    // A removal: every placement gone, the agent removed.
    let remove = store.request_command(agent.id, CommandKind::Remove, "alice").await.unwrap();
    store.finish_command(agent.id, remove.id, true, &[], &[], None).await.unwrap();
    let removed = store.agent(agent.id).await.unwrap();
    assert_eq!(removed.state, AgentState::Removed);
    assert!(store
        .placements(&PlacementFilter { token_id: Some(new_id), ..Default::default() })
        .await
        .unwrap()
        .is_empty());
    assert!(store.finish_command(agent.id, remove.id, true, &[], &[], None).await.is_err(), "done once");
    let states = store.agents_by_state().await.unwrap();
    assert!(states.contains(&("removed".to_string(), 1)) && states.contains(&("failed".to_string(), 1)), "{states:?}");
}

/// Far more enrolments at once than the store has connections: each is one
/// transaction that reads nothing through a second connection, so none
/// waits for a connection the others hold (this deadlocked at 100 hosts).
async fn many_hosts_enrol_at_once_without_exhausting_the_pool(store: Store, _url: String) {
    const HOSTS: usize = 40;
    let (_, secret) = store
        .create_enrolment(
            Some(HOSTS as i64),
            Utc::now() + chrono::Duration::days(1),
            &Labels::new(),
            None,
            &Guard::default(),
            "admin",
        )
        .await
        .unwrap();
    for i in 0..HOSTS {
        let key = format!("AKIAQYLPMN5HHHFP{i:04}");
        store
            .insert_pool_token(&NewToken { labels: Labels::new(), ..new_token(&key) }, &hop("generated"))
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..HOSTS {
        let (store, secret) = (store.clone(), secret.expose().to_string());
        tasks.spawn(async move {
            store.enrol_agent(&secret, &host(&format!("h{i}")), None, None, &format!("cred-{i}"), "server", None).await
        });
    }
    let (enrolled, agents) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let (mut keys, mut agents) = (std::collections::BTreeSet::new(), Vec::new());
        while let Some(done) = tasks.join_next().await {
            let e = done.unwrap().unwrap();
            keys.insert(e.token.access_key_id);
            agents.push(e.agent.id);
        }
        (keys, agents)
    })
    .await
    .expect("the enrolments finished (no connection deadlock)");
    assert_eq!(enrolled.len(), HOSTS, "every host got a key of its own");
    // And every host confirms at once.
    let mut tasks = tokio::task::JoinSet::new();
    for id in agents {
        let store = store.clone();
        let file = honeytrail_core::fleet::PlacedFile {
            path: "/root/.aws/credentials".into(),
            user: Some("root".into()),
            digest: format!("sha256:{}", "ab".repeat(32)),
        };
        tasks.spawn(async move { store.confirm_agent(id, &[file]).await });
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap().unwrap().state, AgentState::Active);
        }
    })
    .await
    .expect("the confirmations finished (no connection deadlock)");
    assert_eq!(store.pool_size().await.unwrap(), 0);
    assert_eq!(store.enrolments().await.unwrap()[0].used, HOSTS as i64);
}

async fn enrolment_guards_are_kept_refusals_counted_and_one_agent_per_instance(store: Store, _url: String) {
    let guard = Guard {
        allowed_from: vec!["10.0.0.0/8".into(), "192.0.2.7/32".into()],
        expected: Some(2),
        ec2_accounts: vec!["123456789012".into(), "210987654321".into()],
    };
    let week = Utc::now() + chrono::Duration::days(7);
    let too_many = Guard { expected: Some(4), ..guard.clone() };
    assert!(matches!(
        store.create_enrolment(Some(3), week, &Labels::new(), None, &too_many, "admin").await,
        Err(StoreError::Refused(_))
    ));
    let (made, secret) = store.create_enrolment(Some(3), week, &Labels::new(), None, &guard, "admin").await.unwrap();
    assert_eq!(made.guard, guard);
    let read = store.enrolment_by_secret(secret.expose()).await.unwrap().expect("known");
    assert_eq!((read.id, &read.guard, read.refused), (made.id, &guard, 0));
    assert!(store.enrolment_by_secret("hts_nosuch").await.unwrap().is_none());
    assert_eq!(store.last_enrolled_key(made.id).await.unwrap(), None);

    store.record_refusal(made.id, "from 198.51.100.9, not in 10.0.0.0/8").await.unwrap();
    store.record_refusal(made.id, &"x".repeat(2000)).await.unwrap();
    let read = &store.enrolments().await.unwrap()[0];
    assert_eq!(read.refused, 2);
    assert!(read.last_refused_at.is_some());
    assert_eq!(read.last_refusal.as_ref().map(String::len), Some(500), "the reason is bounded");

    for i in 0..3 {
        let key = format!("AKIAQYLPMN5HHHFPZC{i:02}");
        store
            .insert_pool_token(&NewToken { labels: Labels::new(), ..new_token(&key) }, &hop("generated"))
            .await
            .unwrap();
    }
    let instance = Ec2Instance {
        instance_id: "i-0123456789abcdef0".into(),
        account_id: "123456789012".into(),
        region: "eu-west-1".into(),
    };
    let first = store
        .enrol_agent(secret.expose(), &host("web-1"), Some("10.1.2.3"), Some(&instance), "c1", "server", None)
        .await
        .unwrap();
    assert_eq!(first.agent.ec2.as_ref(), Some(&instance));
    assert_eq!(store.agent(first.agent.id).await.unwrap().ec2.as_ref(), Some(&instance));
    assert_eq!(store.last_enrolled_key(made.id).await.unwrap(), Some(first.token.id));
    // The same instance again is refused, spending nothing.
    match store
        .enrol_agent(secret.expose(), &host("web-1b"), Some("10.1.2.3"), Some(&instance), "c2", "server", None)
        .await
    {
        Err(StoreError::Refused(why)) => assert!(why.contains("i-0123456789abcdef0 is already enrolled"), "{why}"),
        other => panic!("a second enrolment of one instance: {other:?}"),
    }
    assert_eq!(store.enrolment_by_secret(secret.expose()).await.unwrap().unwrap().used, 1);
    assert_eq!(store.pool_size().await.unwrap(), 2);
    // Once its agent failed (or was removed) the instance may enrol again.
    store.fail_agent(first.agent.id, "gave up").await.unwrap();
    let again = store
        .enrol_agent(secret.expose(), &host("web-1"), Some("10.1.2.3"), Some(&instance), "c3", "server", None)
        .await
        .unwrap();
    assert_eq!(again.agent.ec2.map(|e| e.instance_id), Some(instance.instance_id.clone()));
    // Hosts without an instance are not limited by it.
    store.enrol_agent(secret.expose(), &host("lab"), None, None, "c4", "server", None).await.unwrap();
    assert_eq!(store.enrolment_by_secret(secret.expose()).await.unwrap().unwrap().used, 3);
}

async fn reads_are_filed_once_matched_listed_and_settled(store: Store, _url: String) {
    use honeytrail_core::evidence::{Access, AccessSource, Process};
    use honeytrail_store::{EvidenceFilter, NewAccess, Touch};
    let t = store
        .insert_token(&new_token(KEY), &[Spot { path: "/opt/app/.env".into(), ..spot("db-3", "ops") }], &[])
        .await
        .unwrap();
    let placed = store.placement_at("db-3", "/opt/app/.env").await.unwrap().expect("the placement");
    assert_eq!(placed.0, t.id);
    assert_eq!(store.placement_at("db-3", "/elsewhere").await.unwrap(), None);
    assert_eq!(
        store.placement_paths(Some("db-3")).await.unwrap(),
        vec![("db-3".to_string(), "/opt/app/.env".to_string())]
    );
    let at = Utc::now() - chrono::Duration::minutes(10);
    let read = |id: &str, exe: &str, at: chrono::DateTime<Utc>| Access {
        id: id.into(),
        at,
        last_at: at,
        count: 2,
        path: "/opt/app/.env".into(),
        host: None,
        source: AccessSource::Fanotify,
        process: Some(Process { pid: 4711, exe: Some(exe.into()), uid: Some(0), ..Process::default() }),
        by_owner: false,
    };
    let reads = vec![
        NewAccess {
            access: read("r1", "/usr/bin/cat", at),
            host: "db-3".into(),
            agent_id: None,
            matched: Some(placed),
            quiet: false,
        },
        NewAccess {
            access: read("r2", "/usr/bin/restic", at + chrono::Duration::seconds(1)),
            host: "db-3".into(),
            agent_id: None,
            matched: Some(placed),
            quiet: true,
        },
        NewAccess {
            access: read("r3", "/usr/bin/less", at),
            host: "db-4".into(),
            agent_id: None,
            matched: None,
            quiet: false,
        },
    ];
    assert_eq!(store.file_access(&reads).await.unwrap(), 3);
    assert_eq!(store.file_access(&reads).await.unwrap(), 0, "delivered twice, filed once");
    // The same record ID on another host is another read.
    let other = vec![NewAccess { host: "db-5".into(), matched: None, ..reads[0].clone() }];
    assert_eq!(store.file_access(&other).await.unwrap(), 1);

    let of_token = store.evidence(&EvidenceFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    let states: Vec<(&str, Touch)> = of_token.iter().map(|r| (r.access.id.as_str(), r.touch)).collect();
    assert_eq!(states, vec![("r2", Touch::Quiet), ("r1", Touch::Pending)], "newest first");
    assert_eq!(of_token[1].access, reads[0].access, "read back exactly");
    assert_eq!(of_token[1].access_key_id.as_deref(), Some(KEY));
    assert!(of_token[1].sentence.starts_with("read by /usr/bin/cat, pid 4711, uid 0"), "{}", of_token[1].sentence);
    let unmatched = store.evidence(&EvidenceFilter { host: Some("db-4".into()), ..Default::default() }).await.unwrap();
    assert_eq!((unmatched.len(), unmatched[0].touch), (1, Touch::Unmatched));
    let before =
        store.evidence(&EvidenceFilter { token_id: Some(t.id), until: Some(at), ..Default::default() }).await.unwrap();
    assert_eq!(before.len(), 1);

    let pending = store.pending_touches(Utc::now()).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.access.id.as_str()).collect::<Vec<_>>(), vec!["r1"]);
    assert!(store.pending_touches(at - chrono::Duration::seconds(1)).await.unwrap().is_empty());
    assert!(!store.key_used_between(t.id, at, Utc::now()).await.unwrap());
    store.settle_touches(&[pending[0].id], Touch::Touched).await.unwrap();
    store.settle_touches(&[pending[0].id], Touch::Used).await.unwrap();
    let settled = store.evidence(&EvidenceFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    assert_eq!(settled[1].touch, Touch::Touched, "settled once");
    assert!(store.pending_touches(Utc::now()).await.unwrap().is_empty());
}

async fn enrichment_data_is_kept_whole_and_replaced_per_kind(store: Store, _url: String) {
    use honeytrail_store::EnrichmentInfo;
    assert!(store.enrichment_list().await.unwrap().is_empty());
    assert!(store.enrichment("aws-ranges").await.unwrap().is_none());
    // A body the size of AWS's real file (about 2 MB), with text the
    // database must not change.
    let body = format!("{{\"createDate\":\"2024-11-30-10-53-07\",\"x\":\"{}\"}} ünïcödé \u{1b}", "a".repeat(2 << 20));
    let info = |kind: &str, published: Option<&str>, entries| EnrichmentInfo {
        kind: kind.into(),
        published: published.map(str::to_string),
        entries,
        loaded_at: chrono::DateTime::from_timestamp_millis(1_733_000_000_123).unwrap(),
        loaded_by: "alice".into(),
    };
    store.put_enrichment(&info("aws-ranges", Some("2024-11-30-10-53-07"), 9000), &body).await.unwrap();
    store.put_enrichment(&info("tor-exits", None, 2), "185.220.101.4\n").await.unwrap();
    let got = store.enrichment("aws-ranges").await.unwrap().unwrap();
    assert_eq!(got.body, body, "kept whole, byte for byte");
    assert_eq!(got.info, info("aws-ranges", Some("2024-11-30-10-53-07"), 9000));
    // A new load replaces the old one of its kind only.
    store.put_enrichment(&info("aws-ranges", Some("2024-12-01-00-00-00"), 9100), "{}").await.unwrap();
    let list = store.enrichment_list().await.unwrap();
    assert_eq!(
        list.iter().map(|i| (i.kind.as_str(), i.entries)).collect::<Vec<_>>(),
        [("aws-ranges", 9100), ("tor-exits", 2)]
    );
    assert_eq!(store.enrichment("aws-ranges").await.unwrap().unwrap().body, "{}");
    store.remove_enrichment("tor-exits").await.unwrap();
    assert!(matches!(store.remove_enrichment("tor-exits").await, Err(honeytrail_store::StoreError::NotFound(_))));
    assert_eq!(store.enrichment_list().await.unwrap().len(), 1);
}

/// A CI run takes a pool key with its tags; inside its window a use from the
/// runner's address is kept on the run (no incident), a use from elsewhere
/// is an incident; after the close every use is one. A re-read is a
/// duplicate either way, and a window never reopens or outlives its bound.
async fn a_ci_runs_window_keeps_its_own_uses_and_nothing_else(store: Store, _url: String) {
    use honeytrail_core::ci::{CiRunRequest, Expect, Provider};
    use honeytrail_store::NewCiRun;

    let labels = Labels::from([("team".into(), "payments".into())]);
    let (_, secret) = store
        .create_enrolment(Some(3), Utc::now() + chrono::Duration::days(1), &labels, None, &Guard::default(), "admin")
        .await
        .unwrap();
    let request = CiRunRequest {
        provider: Some(Provider::Github),
        repository: "acme/shop".into(),
        workflow: Some("deploy".into()),
        job: Some("build".into()),
        commit: Some("3f2a9c1d".into()),
        run_id: "4242".into(),
        run_attempt: Some("1".into()),
        ..Default::default()
    };
    let new = NewCiRun {
        request: &request,
        source_address: "198.51.100.4",
        expect: Expect::Runner,
        window_ends_at: Utc::now() + chrono::Duration::hours(6),
        close_token: "close-me",
    };
    // An empty pool refuses and spends nothing.
    assert!(matches!(store.open_ci_run(secret.expose(), &new).await, Err(StoreError::PoolEmpty)));
    assert_eq!(store.enrolments().await.unwrap()[0].used, 0);
    store.insert_pool_token(&NewToken { labels: Labels::new(), ..new_token(KEY) }, &hop("generated")).await.unwrap();
    // Hostile tags are refused before anything is spent.
    let hostile = CiRunRequest { job: Some("build\u{1b}]8;;https://evil\u{7}".into()), ..request.clone() };
    let refused = store.open_ci_run(secret.expose(), &NewCiRun { request: &hostile, ..new.clone() }).await;
    assert!(matches!(refused, Err(StoreError::Refused(ref why)) if why.starts_with("job:")), "{refused:?}");
    assert!(matches!(store.open_ci_run("not-the-secret", &new).await, Err(StoreError::Refused(_))));
    assert_eq!(store.pool_size().await.unwrap(), 1);

    let taken = store.open_ci_run(secret.expose(), &new).await.unwrap();
    assert_eq!(store.pool_size().await.unwrap(), 0);
    assert_eq!(taken.token.access_key_id, KEY);
    assert_eq!(taken.token.labels["ci.repository"], "acme/shop");
    assert_eq!(taken.token.labels["ci.run"], "4242");
    assert_eq!(taken.token.labels["team"], "payments");
    let run = taken.run;
    assert_eq!((run.state(Utc::now()), run.expected_uses, run.source_address.as_str()), ("open", 0, "198.51.100.4"));
    let placed =
        store.placements(&PlacementFilter { token_id: Some(run.token_id), ..Default::default() }).await.unwrap();
    assert_eq!(placed.len(), 1);
    assert!(placed[0].placement.spot.asset.as_deref().unwrap().contains("run 4242 (attempt 1) of acme/shop"));
    let hops = store.hops(run.token_id).await.unwrap();
    assert!(hops.last().unwrap().description.contains(&format!("(CI run #{}) at 198.51.100.4", run.id)), "{hops:?}");

    let window = chrono::Duration::minutes(30);
    let now_event = |id: &str, ip: &str, at: chrono::DateTime<Utc>| TokenEvent {
        event_time: at,
        ..event(run.token_id, id, 0, "GetCallerIdentity", ip)
    };
    // CloudTrail's times are whole seconds, cut down: a call in the second
    // the key was handed out is inside.
    let second = chrono::DateTime::from_timestamp(run.opened_at.timestamp(), 0).unwrap();
    let own = now_event("ci-own", "198.51.100.4", second);
    assert_eq!(store.record_event(&own, window).await.unwrap(), EventOutcome::Expected(run.id));
    assert_eq!(store.record_event(&own, window).await.unwrap(), EventOutcome::Duplicate);
    // Before the window opened: the key was in the pool, not the run's.
    let before = now_event("ci-before", "198.51.100.4", second - chrono::Duration::seconds(5));
    assert!(matches!(store.record_event(&before, window).await.unwrap(), EventOutcome::Opened(_)));
    // Inside the window, from another address: the credentials left the runner.
    let stolen = now_event("ci-stolen", "203.0.113.9", Utc::now());
    assert!(matches!(
        store.record_event(&stolen, window).await.unwrap(),
        EventOutcome::Opened(_) | EventOutcome::Joined(_)
    ));
    // And with no address at all (IAM's last-use, no CloudTrail record).
    let silent = TokenEvent { source_ip: None, ..now_event("ci-silent", "x", Utc::now()) };
    assert!(!matches!(store.record_event(&silent, window).await.unwrap(), EventOutcome::Expected(_)));
    assert!(store.has_event_since(run.token_id, second).await.unwrap());

    // Only the run's own close token closes it; closing twice keeps the first close.
    assert!(store.close_ci_run(run.id, "guess").await.unwrap().is_none());
    let closed = store.close_ci_run(run.id, "close-me").await.unwrap().unwrap();
    assert_eq!(closed.state(Utc::now()), "closed");
    assert_eq!(closed.expected_uses, 1);
    let again = store.close_ci_run(run.id, "close-me").await.unwrap().unwrap();
    assert_eq!(again.closed_at, closed.closed_at);
    // After the close, even the runner's address is an incident.
    let later = now_event("ci-later", "198.51.100.4", closed.closed_at.unwrap() + chrono::Duration::seconds(2));
    assert!(!matches!(store.record_event(&later, window).await.unwrap(), EventOutcome::Expected(_)));
    // A late-read call made before the close is still the run's own.
    let late_read = now_event("ci-late-read", "198.51.100.4", second);
    assert_eq!(store.record_event(&late_read, window).await.unwrap(), EventOutcome::Expected(run.id));
    let uses = store.expected_uses(run.id, 10).await.unwrap();
    assert_eq!(uses[0].event_id, "ci-own");
    assert!(uses.iter().all(|u| u.source_ip.as_deref() == Some("198.51.100.4")));
    assert_eq!(store.ci_run_of(run.token_id).await.unwrap().unwrap().id, run.id);
    assert_eq!(store.ci_runs(None, 10).await.unwrap().len(), 1);
    assert!(store.ci_runs(Some(run.id), 10).await.unwrap().is_empty());

    // A second run whose window expects nothing; its bound passes unclosed.
    store
        .insert_pool_token(&NewToken { labels: Labels::new(), ..new_token("AKIAQYLPMN5HHHFPZAM3") }, &hop("generated"))
        .await
        .unwrap();
    let strict = NewCiRun { expect: Expect::None, close_token: "other", ..new.clone() };
    let second_run = store.open_ci_run(secret.expose(), &strict).await.unwrap().run;
    let own = TokenEvent { token_id: second_run.token_id, ..now_event("ci2-own", "198.51.100.4", Utc::now()) };
    assert!(matches!(store.record_event(&own, window).await.unwrap(), EventOutcome::Opened(_)));
    assert!(store.close_ci_run(second_run.id, "close-me").await.unwrap().is_none(), "one run's token closes no other");
    // A page's runs read together: each run's own uses, at most the limit each.
    let all = store.expected_uses(run.id, 10).await.unwrap().len();
    assert!(all >= 2, "{all}");
    let together = store.expected_uses_of(&[run.id, second_run.id], 1).await.unwrap();
    assert_eq!(together[&run.id].len(), 1);
    assert_eq!(together[&run.id][0].event_id, "ci-own");
    assert!(!together.contains_key(&second_run.id), "the second run expected nothing");
    let incidents = store.incident_ids_of(&[run.token_id, second_run.token_id]).await.unwrap();
    assert_eq!(incidents[&second_run.token_id].len(), 1, "{incidents:?}");
    // Runs to retire: windows that ended before the cut-off.
    assert_eq!(store.ci_runs_to_retire(Utc::now() + chrono::Duration::seconds(1), 10).await.unwrap().len(), 1);
    store.note_ci_run_retired(run.id).await.unwrap();
    assert!(store
        .ci_runs_to_retire(Utc::now() + chrono::Duration::days(1), 10)
        .await
        .unwrap()
        .iter()
        .all(|r| r.id != run.id));
}

/// Every CloudTrail field an intruder writes may hold U+0000 (JSON's
/// `\u0000`), which PostgreSQL's text refuses. The event is stored all the
/// same, on both backends, with the character made visible, and a run of
/// calls with one such call among them loses none.
async fn attacker_text_with_nul_characters_is_stored_and_never_loses_an_event(store: Store, _url: String) {
    let t = store.insert_token(&new_token(KEY), &[], &[hop("generated")]).await.unwrap();
    let window = chrono::Duration::minutes(30);
    let mut calls = Vec::new();
    for i in 0..20 {
        let mut e = event(t.id, &format!("nul-{i}"), 0, "GetCallerIdentity", "203.0.113.9");
        if i == 7 {
            e.user_agent = Some("aws-cli\0/2.15".into());
            e.event_name = "List\0Buckets".into();
            e.error_message = Some("\0".into());
            e.event_id = "nul-\0-7".into();
            e.raw = "{\"userAgent\":\"aws-cli\0\"}".into();
        }
        let store = store.clone();
        calls.push(tokio::spawn(async move { store.record_event(&e, window).await }));
    }
    for call in calls {
        call.await.unwrap().expect("stored");
    }
    let incidents = store.incidents(&IncidentFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].event_count, 20);
    let events = store.incident_events(incidents[0].id).await.unwrap();
    let odd = events.iter().find(|(e, _)| e.event_name.starts_with("List")).expect("the odd call is kept");
    assert!(!odd.0.event_name.contains('\0') && odd.0.event_name.contains("Buckets"), "{:?}", odd.0.event_name);
    // A re-read of the same record is a duplicate, not a second copy.
    let mut again = event(t.id, "nul-\0-7", 0, "GetCallerIdentity", "203.0.113.9");
    again.event_name = "List\0Buckets".into();
    assert_eq!(store.record_event(&again, window).await.unwrap(), EventOutcome::Duplicate);
}

/// The calls of one key that queue behind its turn are stored in one
/// transaction; when the database refuses one of them, that transaction is
/// given up and each call is stored alone: only the refused call fails. The
/// database refuses it through a trigger (as it would a value it cannot
/// store), and the token's lock is held while the calls queue, so the refused
/// call is always stored with others first.
async fn a_call_the_database_refuses_among_calls_stored_together_costs_no_other(store: Store, url: String) {
    use sqlx::{Connection, Executor};
    use std::future::Future;
    use std::pin::Pin;

    let t = store.insert_token(&new_token(KEY), &[], &[hop("generated")]).await.unwrap();
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&url).await.unwrap();
    let mut lock = sqlx::AnyConnection::connect(&url).await.unwrap();
    if url.starts_with("postgres") {
        admin
            .execute(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN \
                 IF NEW.event_id = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; \
                 END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
        admin
            .execute("CREATE TRIGGER refuse_one BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_one()")
            .await
            .unwrap();
        lock.execute("BEGIN").await.unwrap();
        lock.execute(format!("SELECT id FROM tokens WHERE id = {} FOR UPDATE", t.id).as_str()).await.unwrap();
    } else {
        admin
            .execute(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON events WHEN NEW.event_id = 'refused' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
            .unwrap();
        lock.execute("BEGIN IMMEDIATE").await.unwrap();
    }
    let window = chrono::Duration::minutes(30);
    type Call = Pin<Box<dyn Future<Output = Result<EventOutcome, StoreError>> + Send>>;
    let mut calls: Vec<Call> = (0..12)
        .map(|i| {
            let id = if i == 7 { "refused".to_string() } else { format!("together-{i}") };
            let e = event(t.id, &id, 0, "GetCallerIdentity", "203.0.113.9");
            let store = store.clone();
            Box::pin(async move { store.record_event(&e, window).await }) as Call
        })
        .collect();
    // One poll each queues every call (a call queues before it waits); none
    // can be answered while the lock is held.
    std::future::poll_fn(|cx| {
        for call in calls.iter_mut() {
            assert!(call.as_mut().poll(cx).is_pending(), "answered while the token was locked");
        }
        std::task::Poll::Ready(())
    })
    .await;
    lock.execute("ROLLBACK").await.unwrap();
    let mut refused = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        match call.await {
            Ok(_) => {}
            Err(e) => refused.push((i, e.to_string())),
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, 7);
    assert!(refused[0].1.contains("refused by the test"), "{refused:?}");
    let incidents = store.incidents(&IncidentFilter { token_id: Some(t.id), ..Default::default() }).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].event_count, 11, "every other call is stored");
}

/// A decoy is a token of its own kind known by its ARN, with its place as
/// its placement and a custody hop; removing it retires the token and keeps
/// the rest. The identity stream marks it, so the index watches it.
async fn decoys_are_tokens_known_by_their_arn_and_keep_their_history(store: Store, _url: String) {
    use honeytrail_core::decoy::{self, DecoyKind};
    use honeytrail_store::NewDecoy;

    let new = |kind: DecoyKind, name: &str, manager: &str| {
        let arn = kind.arn("aws", "eu-west-1", "123456789012", name).unwrap();
        NewDecoy {
            kind,
            name: name.into(),
            spot: decoy::spot(kind, name, &arn, "123456789012", "eu-west-1", "alice"),
            arn,
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            pool_account: Some("canary-1".into()),
            managed_by: manager.into(),
            actor: "alice".into(),
        }
    };
    let before = store.token_fingerprint().await.unwrap();
    let bucket = store
        .add_decoy(&new(DecoyKind::S3Bucket, "ledger-exports-prod-1a2b", "arn:aws:iam::123456789012:user/admin"))
        .await
        .unwrap();
    let queue = store
        .add_decoy(&new(DecoyKind::SqsQueue, "ledger-jobs-prod", "arn:aws:iam::123456789012:user/admin"))
        .await
        .unwrap();
    assert_eq!(
        (bucket.arn.as_str(), bucket.pool_account.as_deref()),
        ("arn:aws:s3:::ledger-exports-prod-1a2b", Some("canary-1"))
    );
    let err = store.add_decoy(&new(DecoyKind::S3Bucket, "ledger-exports-prod-1a2b", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err}");
    assert_eq!(store.token_fingerprint().await.unwrap().added, before.added + 2);

    let token = store.token(bucket.token_id).await.unwrap();
    assert_eq!((token.kind, token.has_secret), (TokenKind::AwsDecoy, false));
    let placed =
        store.placements(&PlacementFilter { token_id: Some(bucket.token_id), ..Default::default() }).await.unwrap();
    assert_eq!(placed[0].placement.spot.format.as_deref(), Some("decoy-s3-bucket"));
    assert_eq!(store.hops(bucket.token_id).await.unwrap().len(), 1);

    let mut seen = Vec::new();
    store.each_token_identity(|t| seen.push((t.id, t.decoy, t.retired, t.access_key_id.to_string()))).await.unwrap();
    assert!(seen.contains(&(queue.token_id, true, false, queue.arn.clone())), "{seen:?}");
    assert_eq!(store.decoy_managers().await.unwrap(), ["arn:aws:iam::123456789012:user/admin"]);

    let removed = store.remove_decoy(bucket.token_id, Utc::now(), "alice").await.unwrap();
    assert!(removed.removed_at.is_some());
    let again = store.remove_decoy(bucket.token_id, Utc::now(), "alice").await.unwrap();
    assert_eq!(again.removed_at, removed.removed_at, "removing twice changes nothing");
    assert_eq!(store.token(bucket.token_id).await.unwrap().state, TokenState::Retired);
    assert_eq!(store.token_fingerprint().await.unwrap().retired, before.retired + 1);
    assert_eq!(store.hops(bucket.token_id).await.unwrap().len(), 2);
    let live: Vec<i64> = store.decoys(false).await.unwrap().iter().map(|d| d.token_id).collect();
    assert_eq!(live, [queue.token_id]);
    assert_eq!(store.decoys(true).await.unwrap().len(), 2);
    let mut seen = Vec::new();
    store.each_token_identity(|t| seen.push((t.id, t.decoy, t.retired))).await.unwrap();
    assert!(seen.contains(&(bucket.token_id, true, true)), "a removed decoy is still watched: {seen:?}");
}
