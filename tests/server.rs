//! End-to-end tests of `honeytrail serve`'s REST API: authentication, CSRF,
//! roles, malformed input (a clear 4xx and nothing changed), and each
//! endpoint doing its job.

mod common;
use common::*;

/// `GET /api/v1{path}` with `bearer`: the status, the JSON body, the next
/// page's cursor and the response head.
fn api_page(server: &Server, bearer: &str, path: &str) -> (u16, serde_json::Value, Option<String>, String) {
    let (status, head, body) =
        honeytrail_testkit::http_full(server.port, "GET", &format!("/api/v1{path}"), &[("Authorization", bearer)], "")
            .unwrap();
    let next = head.lines().find_map(|l| l.strip_prefix("x-next-cursor: ")).map(|c| c.trim().to_string());
    (status, serde_json::from_str(&body).unwrap_or_default(), next, head)
}

fn api_token(env: &Env, user: &str) -> String {
    env.run(&["user", "token", user, "--for", "tests"]).ok().stdout.trim().to_string()
}

struct Api<'a> {
    server: &'a Server,
}

impl Api<'_> {
    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let (status, text) = self.server.call(method, &format!("/api/v1{path}"), &headers, body.unwrap_or(""));
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

fn use_key(server: &Server, event_id: &str) {
    let event = serde_json::json!({
        "version": "0", "id": format!("eb-{event_id}"), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sts", "account": "123456789012", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": trail_record(KEY, "svc-reader", event_id, "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)
    })
    .to_string();
    let (status, body) = server.call(
        "POST",
        "/ingest/eventbridge",
        &[("Content-Type", "application/json"), ("x-honeytrail-secret", "eb-secret-for-tests-0123456789abcdef")],
        &event,
    );
    assert_eq!(status, 202, "{body}");
}

/// Every documented operation with its path parameters filled in.
fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../crates/server/src/api/openapi.json")).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                let filled = path
                    .replace("{id}", "1")
                    .replace("{key}", KEY)
                    .replace("{format}", "dotenv")
                    .replace("{name}", "soc")
                    .replace("{kind}", "tor");
                out.push((method.to_uppercase(), filled));
            }
        }
    }
    out
}

#[test]
fn every_endpoint_refuses_the_unauthenticated_the_unauthorised_and_malformed_json() {
    let env = Env::new();
    env.run_stdin(
        &["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader", "--secret-stdin"],
        SECRET,
    )
    .ok();
    add_user(&env, "vera", "viewer");
    add_user(&env, "rob", "responder");
    add_user(&env, "emma", "employee");
    add_user(&env, "ada", "admin");
    let (viewer, responder, employee) = (api_token(&env, "vera"), api_token(&env, "rob"), api_token(&env, "emma"));
    let admin = api_token(&env, "ada");
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    let api = Api { server: &server };
    use_key(&server, "api-1");

    let ops = operations();
    assert!(ops.len() > 25);
    for (method, path) in &ops {
        if path.starts_with("/fleet/") || (method == "POST" && path.starts_with("/ci/runs")) {
            // The agent's and the CI run's calls: an enrolment secret, an agent
            // credential or a run's close token, tested in crates/agent/tests/fleet.rs.
            continue;
        }
        let (status, body) = api.call(None, method, path, Some("{}"));
        if path == "/openapi.json" {
            assert_eq!(status, 200);
            continue;
        }
        assert_eq!(status, 401, "{method} {path} without credentials: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
        let (status, _) = api.call(Some("htk_forged"), method, path, Some("{}"));
        assert_eq!(status, 401, "{method} {path} with a forged token");
        // An employee may only look things up and ask who they are.
        if !["/lookup", "/me", "/api-tokens"].iter().any(|p| path.starts_with(p)) {
            let (status, body) = api.call(Some(&employee), method, path, Some("{}"));
            assert_eq!(status, 403, "{method} {path} as an employee: {body}");
            assert_eq!(body["error"]["code"], "forbidden");
        }
        // A viewer changes nothing.
        if method != "GET" && !path.starts_with("/api-tokens") && path != "/lookup" {
            let (status, body) = api.call(Some(&viewer), method, path, Some("{}"));
            assert_eq!(status, 403, "{method} {path} as a viewer: {body}");
        }
        // Malformed JSON is a clear 400 wherever a body is read.
        let no_body = [
            format!("/tokens/{KEY}/retire"),
            "/channels/soc/test".into(),
            "/routes/soc/test".into(),
            "/deliveries/1/retry".into(),
            "/enrollments/1/revoke".into(),
            "/agents/1/rotate".into(),
            "/agents/1/remove".into(),
            "/actions/runs/1/approve".into(),
            "/actions/runs/1/cancel".into(),
            "/actions/runs/1/undo".into(),
            // The body is the data file as it is (checked below).
            "/enrich/tor".into(),
        ];
        if (method == "POST" || method == "PUT") && !no_body.contains(path) {
            let (status, body) = api.call(Some(&admin), method, path, Some("{not json"));
            assert_eq!(status, 400, "{method} {path} with malformed JSON: {body}");
            assert_eq!(body["error"]["code"], "malformed_json", "{method} {path}");
        }
    }
    // A data set that is not what its kind says is refused by name.
    let (status, body) = api.call(Some(&admin), "PUT", "/enrich/tor", Some("{not json"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no Tor exit address"), "{body}");
    // Nothing changed through all of that.
    let (_, incident) = api.call(Some(&viewer), "GET", "/incidents/1", None);
    assert_eq!(incident["incident"]["state"], "open");
    assert_eq!(incident["history"].as_array().unwrap().len(), 1, "only the opening: {incident}");
    let (_, tokens) = api.call(Some(&viewer), "GET", "/tokens", None);
    assert_eq!(tokens[0]["state"], "active");
    let (status, body) = api.call(Some(&responder), "POST", "/incidents/1/state", Some("{\"state\": \"acknowledged\""));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("malformed_json")));
    let (status, body) = api.call(Some(&responder), "POST", "/incidents/1/state", Some("{\"state\": \"sideways\"}"));
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.call(Some(&responder), "POST", "/incidents/1/state", Some("{\"nope\": 1}"));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, _) = server.call(
        "POST",
        "/api/v1/incidents/1/notes",
        &[("Authorization", &format!("Bearer {responder}"))],
        "{\"text\":\"x\"}",
    );
    assert_eq!(status, 415, "JSON needs its content type");
    let (status, _) = api.call(Some(&responder), "GET", "/no/such/thing", None);
    assert_eq!(status, 404);
    let (_, incident) = api.call(Some(&viewer), "GET", "/incidents/1", None);
    assert_eq!(incident["incident"]["state"], "open");
}

#[test]
fn the_api_runs_the_incident_workflow_and_records_who_did_what() {
    let env = Env::new();
    add_user(&env, "ada", "admin");
    add_user(&env, "rob", "responder");
    add_user(&env, "emma", "employee");
    let (admin, responder, employee) = (api_token(&env, "ada"), api_token(&env, "rob"), api_token(&env, "emma"));
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    let api = Api { server: &server };

    let (status, me) = api.call(Some(&responder), "GET", "/me", None);
    assert_eq!((status, me["role"].as_str(), me["csrf_token"].is_null()), (200, Some("responder"), true));
    // Import with a secret, place it, render bait.
    let body = serde_json::json!({"access_key_id": KEY, "secret_access_key": SECRET, "iam_user_name": "svc-reader",
                                  "labels": {"team": "payments"}, "memo": "laptop bait"})
    .to_string();
    let (status, token) = api.call(Some(&responder), "POST", "/tokens", Some(&body));
    assert_eq!(status, 201, "{token}");
    assert!(token.get("secret").is_none() && !token.to_string().contains(SECRET), "the secret never comes back");
    let (status, _) = api.call(Some(&responder), "POST", "/tokens", Some(&body));
    assert_eq!(status, 409, "a duplicate is refused");
    let placement = serde_json::json!({"access_key_id": KEY, "host": "maria-mbp", "path": "~/.aws/credentials",
                                       "owner": "Maria", "asset": "MacBook Pro", "serial": "C02XYZ", "format": "aws-credentials"})
    .to_string();
    let (status, p) = api.call(Some(&responder), "POST", "/placements", Some(&placement));
    assert_eq!(status, 201, "{p}");
    let (status, bait) = api.call(Some(&responder), "GET", &format!("/tokens/{KEY}/bait/aws-credentials"), None);
    assert_eq!(status, 200);
    let bait = bait.as_str().unwrap().to_string();
    assert!(bait.contains(&format!("aws_access_key_id = {KEY}")) && bait.contains(SECRET), "{bait}");
    let (_, detail) = api.call(Some(&responder), "GET", &format!("/tokens/{KEY}"), None);
    assert!(detail["description"]["headline"].as_str().unwrap().contains("Maria's MacBook Pro"), "{detail}");
    assert!(detail["custody"].to_string().contains("rendered as aws-credentials in the honeytrail web UI/API for rob"));
    let (_, found) = api.call(Some(&responder), "GET", "/tokens?host=maria&owner=Maria", None);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, none) = api.call(Some(&responder), "GET", "/tokens?host=bastion", None);
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (_, csv) = api.call(Some(&responder), "GET", "/placements.csv?owner=maria", None);
    assert!(csv.as_str().unwrap().lines().nth(1).unwrap().contains("maria-mbp"));

    // The key is used; the incident is worked.
    use_key(&server, "wf-1");
    let (_, list) = api.call(Some(&responder), "GET", "/incidents?unresolved=true", None);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) =
        api.call(Some(&responder), "POST", "/incidents/1/state", Some(r#"{"state": "acknowledged", "note": "on it"}"#));
    assert_eq!(status, 200);
    let (status, _) = api.call(Some(&responder), "POST", "/incidents/1/notes", Some(r#"{"text": "asked Maria"}"#));
    assert_eq!(status, 201);
    let (status, body) = api.call(Some(&responder), "POST", "/incidents/1/state", Some(r#"{"state": "open"}"#));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    let (_, incident) = api.call(Some(&responder), "GET", "/incidents/1", None);
    let kinds: Vec<&str> =
        incident["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "state", "note"]);
    assert_eq!(incident["history"][2]["actor"], "rob");
    assert!(incident["runbook"].as_str().unwrap().contains("Rule out a false positive"));

    // An employee's "what is this?": a decoy is reported, not used.
    let (status, answer) = api.call(
        Some(&employee),
        "POST",
        "/lookup",
        Some(&serde_json::json!({"text": format!("aws_access_key_id={KEY}"), "found_at": "shared drive"}).to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decoy"], true);
    let report = answer["report"].as_i64().unwrap();
    let (_, reports) = api.call(Some(&responder), "GET", "/incidents?kind=report", None);
    assert_eq!(reports.as_array().unwrap().len(), 1);
    let (_, by_key) = api.call(Some(&responder), "GET", &format!("/incidents?token={KEY}&kind=use"), None);
    assert_eq!(by_key.as_array().unwrap().len(), 1);
    assert_eq!(api.call(Some(&responder), "GET", "/incidents?kind=other", None).0, 400);
    let (_, r) = api.call(Some(&responder), "GET", &format!("/incidents/{report}"), None);
    assert_eq!((r["incident"]["kind"].as_str(), r["incident"]["severity"].as_str()), (Some("report"), Some("low")));
    let other = honeytrail_core::keyid::synthesize(123456789012, 7);
    let (_, answer) =
        api.call(Some(&employee), "POST", "/lookup", Some(&serde_json::json!({"text": other}).to_string()));
    assert_eq!(answer["decoy"], false);
    let (status, _) = api.call(Some(&employee), "POST", "/lookup", Some(r#"{"text": "no key here"}"#));
    assert_eq!(status, 400);
    // One person cannot look up key after key at machine speed: 20 in ten
    // minutes (three made above), then 429 with what to do instead.
    for n in 0..17u64 {
        let probe = honeytrail_core::keyid::synthesize(123456789012, 100 + n);
        let body = serde_json::json!({"text": probe}).to_string();
        assert_eq!(api.call(Some(&employee), "POST", "/lookup", Some(&body)).0, 200, "lookup {n}");
    }
    let (status, refused) =
        api.call(Some(&employee), "POST", "/lookup", Some(&serde_json::json!({"text": KEY}).to_string()));
    assert_eq!(status, 429, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("security team"), "{refused}");
    let (status, _) =
        api.call(Some(&responder), "POST", "/lookup", Some(&serde_json::json!({"text": KEY}).to_string()));
    assert_eq!(status, 200, "the limit is per person");

    // Users and API tokens.
    let (status, created) = api.call(Some(&admin), "POST", "/users", Some(r#"{"name": "vic", "role": "viewer"}"#));
    assert_eq!(status, 201);
    assert_eq!(created["one_time_password"].as_str().unwrap().len(), 20);
    let (status, _) = api.call(Some(&responder), "POST", "/users", Some(r#"{"name": "eve", "role": "admin"}"#));
    assert_eq!(status, 403);
    let (status, made) =
        api.call(Some(&responder), "POST", "/api-tokens", Some(r#"{"name": "soar", "role": "admin"}"#));
    assert_eq!(status, 409, "no more than the user's own role: {made}");
    let (status, made) =
        api.call(Some(&responder), "POST", "/api-tokens", Some(r#"{"name": "soar", "role": "viewer"}"#));
    assert_eq!(status, 201);
    let soar = made["token"].as_str().unwrap().to_string();
    assert!(soar.starts_with("htk_"));
    assert_eq!(api.call(Some(&soar), "GET", "/incidents", None).0, 200);
    assert_eq!(
        api.call(Some(&soar), "POST", "/incidents/1/notes", Some(r#"{"text": "x"}"#)).0,
        403,
        "scoped to viewer"
    );
    let id = made["api_token"]["id"].as_i64().unwrap();
    assert_eq!(api.call(Some(&responder), "DELETE", &format!("/api-tokens/{id}"), None).0, 200);
    assert_eq!(api.call(Some(&soar), "GET", "/incidents", None).0, 401, "revoked");
    let (_, listed) = api.call(Some(&responder), "GET", "/api-tokens", None);
    assert!(!listed.to_string().contains(&soar), "tokens are never listed");

    // Enrolment secrets: admins only, shown once, limited, revocable.
    let body = r#"{"uses": 2, "expires": "3d", "labels": ["fleet=web"]}"#;
    assert_eq!(api.call(Some(&responder), "POST", "/enrollments", Some(body)).0, 403);
    let (status, made) = api.call(Some(&admin), "POST", "/enrollments", Some(body));
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40 && !secret.to_lowercase().contains("honey"), "{secret}");
    assert_eq!(made["enrollment"]["labels"]["fleet"], "web");
    let (status, refused) = api.call(Some(&admin), "POST", "/enrollments", Some(r#"{"expires": "3d"}"#));
    assert_eq!(status, 400, "uses or unlimited must be said: {refused}");
    let (status, refused) =
        api.call(Some(&admin), "POST", "/enrollments", Some(r#"{"unlimited": true, "expires": "1y"}"#));
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("not a lifetime"), "{refused}");
    let (_, listed) = api.call(Some(&admin), "GET", "/enrollments", None);
    assert!(!listed.to_string().contains(&secret), "secrets are never listed");
    assert_eq!(api.call(Some(&responder), "GET", "/enrollments", None).0, 403);
    let id = made["enrollment"]["id"].as_i64().unwrap();
    let (status, revoked) = api.call(Some(&admin), "POST", &format!("/enrollments/{id}/revoke"), None);
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(api.call(Some(&admin), "POST", &format!("/enrollments/{id}/revoke"), None).0, 409);
    // The canary-account pool: anyone reads, admins change; a role ARN is
    // checked before anything is asked of AWS (adding one is tested against
    // moto's accounts in tests/cli.rs).
    assert_eq!(api.call(Some(&responder), "GET", "/accounts", None), (200, serde_json::json!([])));
    let body = r#"{"name": "east", "role_arn": "arn:aws:iam::111111111111:role/honeytrail"}"#;
    assert_eq!(api.call(Some(&responder), "POST", "/accounts", Some(body)).0, 403);
    let (status, refused) =
        api.call(Some(&admin), "POST", "/accounts", Some(r#"{"name": "east", "role_arn": "arn:aws:iam::1:user/x"}"#));
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("not an IAM role's ARN"), "{refused}");
    let (status, refused) = api.call(Some(&admin), "POST", "/accounts", Some(r#"{"name": "-x", "profile": "p"}"#));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(api.call(Some(&admin), "POST", "/accounts", Some(r#"{"name": "east", "colour": "red"}"#)).0, 400);
    assert_eq!(api.call(Some(&admin), "DELETE", "/accounts/east", None).0, 404);
    assert_eq!(api.call(Some(&responder), "DELETE", "/accounts/east", None).0, 403);
    // Placement templates: anyone reads, admins change.
    let (_, templates) = api.call(Some(&responder), "GET", "/templates", None);
    assert_eq!(templates.as_array().unwrap().len(), 2, "{templates}");
    let body =
        r#"{"name": "ci", "format": "dotenv", "path": "/builds/.env", "profile": null, "owner": null, "mode": 384}"#;
    assert_eq!(api.call(Some(&responder), "POST", "/templates", Some(body)).0, 403);
    assert_eq!(api.call(Some(&admin), "POST", "/templates", Some(body)).0, 201);
    let (_, ci) = api.call(Some(&responder), "GET", "/templates/ci", None);
    assert_eq!(ci["path"], "/builds/.env");
    let bad = r#"{"name": "ci", "format": "dotenv", "path": "/builds/.env", "mode": 511}"#;
    assert_eq!(api.call(Some(&admin), "POST", "/templates", Some(bad)).0, 400, "world-writable");
    assert_eq!(api.call(Some(&admin), "DELETE", "/templates/ci", None).0, 200);
    assert_eq!(api.call(Some(&admin), "GET", "/templates/ci", None).0, 404);

    // Channels, routes, runbooks, deliveries.
    let dir = env.dir.path().join("alerts.jsonl");
    let channel = serde_json::json!({"name": "soc", "kind": "jsonl", "config": {"path": dir}}).to_string();
    assert_eq!(api.call(Some(&responder), "POST", "/channels", Some(&channel)).0, 403);
    assert_eq!(api.call(Some(&admin), "POST", "/channels", Some(&channel)).0, 201);
    let bad = r#"{"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/"}}"#;
    assert_eq!(api.call(Some(&admin), "POST", "/channels", Some(bad)).0, 400);
    assert_eq!(api.call(Some(&responder), "POST", "/channels/soc/test", None).0, 200);
    assert!(std::fs::read_to_string(&dir).unwrap().contains("\"test\":true"));
    let (status, off) = api.call(Some(&admin), "PUT", "/channels/soc", Some(r#"{"enabled": false}"#));
    assert_eq!((status, off["enabled"].as_bool()), (200, Some(false)), "{off}");
    assert_eq!(api.call(Some(&admin), "PUT", "/channels/soc", Some(r#"{"config": {"nope": 1}}"#)).0, 400);
    assert_eq!(api.call(Some(&responder), "PUT", "/channels/soc", Some(r#"{"enabled": true}"#)).0, 403);
    let (status, on) = api.call(Some(&admin), "PUT", "/channels/soc", Some(r#"{"enabled": true}"#));
    assert_eq!((status, on["enabled"].as_bool()), (200, Some(true)));
    let route = r#"{"name": "all", "channels": ["soc"], "min_severity": "high"}"#;
    assert_eq!(api.call(Some(&admin), "POST", "/routes", Some(route)).0, 201);
    let (status, tested) = api.call(Some(&responder), "POST", "/routes/all/test", None);
    assert_eq!((status, tested["channels"]["soc"].as_str()), (200, Some("delivered")), "{tested}");
    assert_eq!(api.call(Some(&responder), "POST", "/routes/nope/test", None).0, 404);
    let runbook = r#"{"selector": "label:team=payments", "template": "Call payments about {{ key }}."}"#;
    assert_eq!(api.call(Some(&admin), "PUT", "/runbooks/payments", Some(runbook)).0, 200);
    let broken = r#"{"selector": "default", "template": "{% if %}"}"#;
    assert_eq!(api.call(Some(&admin), "PUT", "/runbooks/broken", Some(broken)).0, 400);
    assert_eq!(api.call(Some(&responder), "GET", "/deliveries?state=dead", None).0, 200);
    assert_eq!(api.call(Some(&responder), "GET", "/deliveries?state=lost", None).0, 400);

    // Retire through the API (imported: only here).
    let (status, retired) = api.call(Some(&responder), "POST", &format!("/tokens/{KEY}/retire"), None);
    assert_eq!((status, retired["state"].as_str()), (200, Some("retired")));

    // The audit log: who, what, from where; admins only; exportable.
    assert_eq!(api.call(Some(&responder), "GET", "/audit", None).0, 403);
    let (_, audit) = api.call(Some(&admin), "GET", "/audit", None);
    let actions: Vec<String> =
        audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    for a in [
        "token.import",
        "placement.add",
        "token.render",
        "incident.state",
        "incident.note",
        "lookup",
        "user.create",
        "api_token.revoke",
        "channel.create",
        "token.retire",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} missing from {actions:?}");
    }
    let entry = audit.as_array().unwrap().iter().find(|e| e["action"] == "incident.state").unwrap();
    assert_eq!((entry["actor"].as_str(), entry["from"].as_str()), (Some("rob"), Some("127.0.0.1")));
    let (status, csv) = api.call(Some(&admin), "GET", "/audit?format=csv", None);
    assert_eq!(status, 200);
    assert!(csv.as_str().unwrap().starts_with("id,at,actor,action,target,detail,from"));
}

#[test]
fn sessions_need_csrf_tokens_and_sign_in_is_rate_limited() {
    let env = Env::new();
    let password = add_user(&env, "rob", "responder");
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    use_key(&server, "s-1");
    let port = server.port;
    let login = |user: &str, pass: &str| -> (u16, String) {
        let (status, head, _) = sign_in_form(port, "/login", &format!("user={user}&password={pass}"));
        (status, head)
    };
    // A login form not from our page is refused.
    let (status, head, _) = honeytrail_testkit::http_full(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("user=rob&password={password}&csrf=x"),
    )
    .unwrap();
    assert_eq!(status, 303);
    assert!(head.contains("location: /login?error=expired"), "{head}");
    let (status, head) = login("rob", &password);
    assert_eq!(status, 303);
    assert!(head.lines().any(|l| l.trim_end() == "location: /"), "{head}");
    let session = head.lines().find_map(|l| l.strip_prefix("set-cookie: ht_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let cookie = format!("ht_session={}", session.split(';').next().unwrap());
    // The one-time password must be changed before anything else.
    let (status, body) = server.call("GET", "/api/v1/incidents", &[("Cookie", &cookie)], "");
    assert_eq!(status, 403, "{body}");
    let (status, page) = server.call("GET", "/account", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie.as_str())];
    let change = format!("csrf={csrf}&current={password}&new=a+long+new+passphrase&repeat=a+long+new+passphrase");
    let (status, _) = server.call("POST", "/account", &form, &change.replace(&csrf, "wrong"));
    assert_eq!(status, 403, "a form without the session's CSRF token is refused");
    let (status, head, _) = honeytrail_testkit::http_full(port, "POST", "/account", &form, &change).unwrap();
    assert_eq!(status, 303, "{head}");
    // The change ended the session it was made in (and every other one);
    // the answer carries a new one.
    assert_eq!(server.call("GET", "/account", &[("Cookie", &cookie)], "").0, 303, "the old session is over");
    let renewed = head.lines().find_map(|l| l.strip_prefix("set-cookie: ht_session=")).expect("a new session");
    let cookie = format!("ht_session={}", renewed.split(';').next().unwrap());
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie.as_str())];
    // Every page renders for a signed-in responder, with a placement to list.
    env.run(&["placement", "add", KEY, "--host", "web-1", "--path", "/srv/app/.env", "--owner", "maria"]).ok();
    for page in [
        "/",
        "/incidents",
        "/incidents?state=open",
        "/incidents/1",
        "/tokens",
        &format!("/tokens/{KEY}"),
        "/placements",
        "/placements?host=x&all=true",
        "/channels",
        "/api-tokens",
        "/lookup",
        "/account",
        "/accounts",
    ] {
        let (status, html) = server.call("GET", page, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{page}: {html}");
        assert!(!html.contains("failed to render") && html.contains("Sign out"), "{page}: {html}");
    }
    for page in ["/users", "/audit"] {
        let (status, html) = server.call("GET", page, &[("Cookie", &cookie)], "");
        assert_eq!(status, 403, "{page} is for admins: {html}");
    }
    // API calls with the cookie: reads work, changes need X-CSRF-Token.
    let (status, me) = server.call("GET", "/api/v1/me", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let me: serde_json::Value = serde_json::from_str(&me).unwrap();
    let token = me["csrf_token"].as_str().unwrap().to_string();
    let json = ("Content-Type", "application/json");
    let body = r#"{"state": "acknowledged"}"#;
    let (status, refused) = server.call("POST", "/api/v1/incidents/1/state", &[json, ("Cookie", &cookie)], body);
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("CSRF"));
    let (status, _) =
        server.call("POST", "/api/v1/incidents/1/state", &[json, ("Cookie", &cookie), ("X-CSRF-Token", "nope")], body);
    assert_eq!(status, 403);
    let (status, _) =
        server.call("POST", "/api/v1/incidents/1/state", &[json, ("Cookie", &cookie), ("X-CSRF-Token", &token)], body);
    assert_eq!(status, 200);
    // A UI form post without the token changes nothing.
    let (status, _) = server.call("POST", "/incidents/1/state", &form, "csrf=forged&state=resolved");
    assert_eq!(status, 403);
    assert_eq!(env.run(&["incident", "show", "1", "--json"]).ok().json()["incident"]["state"], "acknowledged");
    // Five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        let (_, head) = login("rob", "wrong-password");
        assert!(head.contains("error=invalid"), "{head}");
    }
    let (status, head) = login("rob", "a+long+new+passphrase");
    assert_eq!(status, 429, "{head}");
    assert!(head.to_lowercase().contains("retry-after:"));
    let metrics = server.metrics();
    assert!(metrics.contains("honeytrail_logins_total{outcome=\"failed\"} 5"), "{metrics}");
    assert!(server.call("GET", "/readyz", &[], "").1.contains("ready"));
}

#[test]
fn the_cli_works_against_a_remote_server() {
    let env = Env::new();
    env.run_stdin(
        &["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader", "--secret-stdin"],
        SECRET,
    )
    .ok();
    env.run(&["placement", "add", KEY, "--host", "web-7", "--path", "/srv/.env", "--owner", "ops"]).ok();
    add_user(&env, "rob", "responder");
    let token = api_token(&env, "rob");
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    use_key(&server, "remote-1");
    let url = format!("http://127.0.0.1:{}", server.port);
    // A second machine: no local store at all.
    let laptop = Env::new();
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str()];
        all.extend_from_slice(args);
        let out = laptop.command(&all).env("HONEYTRAIL_TOKEN", &token).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let listed = remote(&["incident", "list"]).ok();
    assert!(listed.stdout.contains("#1") && listed.stdout.contains(KEY), "{}", listed.stdout);
    assert!(remote(&["incident", "ack", "1", "--note", "from my laptop"]).ok().stdout.contains("now acknowledged"));
    remote(&["incident", "note", "1", "checking web-7"]).ok();
    let shown = remote(&["incident", "show", "1", "--json"]).ok().json();
    assert_eq!(shown["incident"]["state"], "acknowledged");
    assert_eq!(shown["history"][1]["actor"], "rob");
    assert!(remote(&["incident", "show", "1"]).ok().stdout.contains("web-7"));
    let tokens = remote(&["token", "list", "--json"]).ok().json();
    assert_eq!(tokens[0]["access_key_id"], KEY);
    let other = honeytrail_core::keyid::synthesize(123456789012, 42);
    let mut import = laptop.command(&[
        "--server",
        &url,
        "token",
        "import",
        "aws",
        "--access-key-id",
        &other,
        "--secret-stdin",
        "--label",
        "team=web",
        "--host",
        "web-8",
        "--path",
        "/srv/.env",
    ]);
    let mut child = import
        .env("HONEYTRAIL_TOKEN", &token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(SECRET.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = env.run(&["token", "show", &other, "--json"]).ok().json();
    assert_eq!((shown["has_secret"].as_bool(), shown["labels"]["team"].as_str()), (Some(true), Some("web")));
    assert!(shown["placements"].to_string().contains("web-8"), "{shown}");
    let bait = remote(&["render", KEY, "--format", "dotenv"]).ok().stdout;
    assert!(bait.contains(KEY) && bait.contains(SECRET), "{bait}");
    assert!(remote(&["placement", "list", "--csv"]).ok().stdout.contains("web-7"));
    let denied = remote(&["audit", "list"]).fails();
    assert!(denied.stderr.contains("the server answered 403"), "{}", denied.stderr);
    let local_only = remote(&["channel", "list"]).fails();
    assert!(local_only.stderr.contains("local store only"), "{}", local_only.stderr);
    let out = laptop.run(&["--server", &url, "incident", "list"]).fails();
    assert!(out.stderr.contains("HONEYTRAIL_TOKEN"), "{}", out.stderr);
    let out = laptop.run(&["--server", &url, "--token", "htk_forged", "incident", "list"]).fails();
    assert!(out.stderr.contains("401") && out.stderr.contains("unknown or revoked"), "{}", out.stderr);
    assert!(!laptop.data().exists(), "the laptop has no local store");
    // Changes on the server's own command line are audited too: once, by
    // the operation itself, from "cli on HOST" (no second entry guessed
    // from the command words).
    env.run(&["incident", "note", "1", "from the console"]).ok();
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    let entries = audit.as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    let from_cli = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["from"].as_str().unwrap_or("").starts_with("cli on "))
            .count()
    };
    for a in ["incident.note", "placement.add", "token.import"] {
        assert_eq!(from_cli(a), 1, "{a} from the command line, once, in {audit}");
    }
    for a in ["incident.state", "incident.note", "token.render"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(!actions.iter().any(|a| a.starts_with("cli.")), "{actions:?}");
}

#[test]
fn serve_reads_its_cloudtrail_sources_and_reports_their_lag() {
    let moto = honeytrail_testkit::Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    let (ok, _, err) =
        honeytrail_testkit::aws_cli(&moto.endpoint, "testing", "testing", &["s3", "mb", "s3://trail-logs"]);
    assert!(ok, "{err}");
    let log = serde_json::json!({"Records": [trail_record(KEY, "svc-reader", "w-1", "2026-11-28T09:00:00Z", "s3.amazonaws.com", "ListBuckets", None)]});
    let file = env.dir.path().join("log.json");
    std::fs::write(&file, log.to_string()).unwrap();
    let key = "s3://trail-logs/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/log.json";
    let (ok, _, err) =
        honeytrail_testkit::aws_cli(&moto.endpoint, "testing", "testing", &["s3", "cp", file.to_str().unwrap(), key]);
    assert!(ok, "{err}");
    let server = Server::start(&env, &[("HONEYTRAIL_SERVE_WATCH", "s3:trail-logs/AWSLogs/")]);
    let mut found = false;
    for _ in 0..100 {
        if env.run(&["incident", "list", "--json"]).ok().json().as_array().is_some_and(|a| a.len() == 1) {
            found = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(found, "serve read the bucket and opened the incident");
    let metrics = server.metrics();
    assert!(
        metrics.contains("honeytrail_source_last_read_age_seconds{source=\"s3://trail-logs/AWSLogs/\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("honeytrail_source_objects_read{source=\"s3://trail-logs/AWSLogs/\"} 1"), "{metrics}");
    assert!(metrics.contains("honeytrail_incidents{state=\"open\"} 1"), "{metrics}");
}

#[test]
fn a_trusted_proxy_can_sign_employees_in_for_the_lookup_page_only() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let sso = ("X-Forwarded-User", "maria@acme.test");
    // Until proxies are listed, nobody's header is believed, loopback included.
    {
        let untrusted = Server::start(&env, &[("HONEYTRAIL_SSO_HEADER", "X-Forwarded-User")]);
        assert_eq!(untrusted.call("GET", "/lookup", &[sso], "").0, 303);
    }
    let server = Server::start(
        &env,
        &[("HONEYTRAIL_SSO_HEADER", "X-Forwarded-User"), ("HONEYTRAIL_SSO_TRUSTED_PROXIES", "127.0.0.1,::1")],
    );
    let (status, _) = server.call("GET", "/lookup", &[], "");
    assert_eq!(status, 303, "no header, no session: sign in first");
    let (status, page) = server.call("GET", "/lookup", &[sso], "");
    assert_eq!(status, 200, "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = [sso, ("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _) = server.call("POST", "/lookup", &form, &format!("csrf=forged&text={KEY}"));
    assert_eq!(status, 403);
    let (status, page) = server.call("POST", "/lookup", &form, &format!("csrf={csrf}&text={KEY}&found_at=printer"));
    assert_eq!(status, 200);
    assert!(page.contains("monitored decoy credential"), "{page}");
    let (status, _) = server.call("GET", "/incidents", &[sso], "");
    assert_eq!(status, 303, "the header opens the lookup page only");
    let (status, _) = server.call("GET", "/api/v1/incidents", &[sso], "");
    assert_eq!(status, 401);
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(incidents[0]["kind"], "report");
    let shown = env.run(&["incident", "show", "1", "--json"]).ok().json();
    assert_eq!(shown["history"][0]["actor"], "maria@acme.test (sso)");
}

#[test]
fn sigterm_finishes_in_flight_work_and_exits_cleanly() {
    let env = Env::new();
    let mut server = Server::start(&env, &[]);
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = exited.expect("serve stopped within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// The command line and the API run the same operation: the same limit on
/// a note, the same message when it is refused, and the same audit entry
/// (action, target) when it is taken — only the actor and origin differ.
#[test]
fn the_command_line_and_the_api_share_one_operation() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    add_user(&env, "rob", "responder");
    add_user(&env, "ada", "admin");
    let (responder, admin) = (api_token(&env, "rob"), api_token(&env, "ada"));
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    let api = Api { server: &server };
    use_key(&server, "front-1");

    let long = "x".repeat(5001);
    let cli = env.run(&["--actor", "carol", "incident", "note", "1", &long]).fails();
    let body = serde_json::json!({ "text": long }).to_string();
    let (status, refused) = api.call(Some(&responder), "POST", "/incidents/1/notes", Some(&body));
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert_eq!(message, "the note is longer than 5000 characters");
    assert!(cli.stderr.contains(message), "the command line refuses it the same way: {}", cli.stderr);
    // An empty note likewise.
    assert!(env.run(&["incident", "note", "1", "   "]).fails().stderr.contains("the note is empty"));
    let (status, _) = api.call(Some(&responder), "POST", "/incidents/1/notes", Some(r#"{"text": "  "}"#));
    assert_eq!(status, 400);

    env.run(&["--actor", "carol", "incident", "note", "1", "from the console"]).ok();
    let (status, _) = api.call(Some(&responder), "POST", "/incidents/1/notes", Some(r#"{"text": "from the API"}"#));
    assert_eq!(status, 201);
    let (_, audit) = api.call(Some(&admin), "GET", "/audit", None);
    let notes: Vec<(&str, &str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "incident.note")
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap(), e["from"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(notes.len(), 2, "one entry per note taken, none for the refused ones: {notes:?}");
    assert!(notes.iter().all(|(_, target, _)| *target == "incident #1"), "{notes:?}");
    assert!(notes.iter().any(|(actor, _, from)| *actor == "rob" && *from == "127.0.0.1"), "{notes:?}");
    assert!(notes.iter().any(|(actor, _, from)| *actor == "carol" && from.starts_with("cli on ")), "{notes:?}");
}

/// Slow clients cannot hold the server: past the connection limit a client
/// is answered 503 at once, and a client that never finishes its headers
/// is dropped after the header timeout, after which the server answers again.
#[test]
fn slow_clients_are_refused_and_dropped_not_waited_for() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let env = Env::new();
    let slow_request = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        s
    };
    // Past the limit a client is answered at once, not queued behind the
    // slow ones. Their header time (30 s) is far off, so no slot frees by
    // itself however loaded the machine is.
    let server = Server::start(
        &env,
        &[("HONEYTRAIL_SERVE_MAX_CONNECTIONS", "20"), ("HONEYTRAIL_SERVE_HEADER_TIMEOUT_SECONDS", "30")],
    );
    let slow: Vec<std::net::TcpStream> = (0..20).map(|_| slow_request(server.port)).collect();
    // On a loaded machine the server may not have taken all 20 yet; none
    // can free itself (30 s), so a 503 must come, each answer at once.
    let mut status = 0;
    for _ in 0..50 {
        let started = Instant::now();
        status = server.call("GET", "/healthz", &[], "").0;
        assert!(started.elapsed() < Duration::from_secs(20), "answered at once, not after a slot freed");
        if status == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 503, "past the limit a connection is refused");
    drop(slow);
    let mut again = 0;
    for _ in 0..50 {
        again = server.call("GET", "/healthz", &[], "").0;
        if again == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(again, 200, "a client that leaves frees its slot");
    drop(server);
    // A client that never finishes its headers is closed by the server once
    // its header time is up.
    let server = Server::start(&env, &[("HONEYTRAIL_SERVE_HEADER_TIMEOUT_SECONDS", "1")]);
    let mut s = slow_request(server.port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    assert!(s.read_to_end(&mut buf).is_ok(), "the server closed the slow connection");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(server.call("GET", "/healthz", &[], "").0, 200, "and keeps serving");
}

/// The tokens list pages in the database: a default and a maximum page
/// size, a cursor to the next page, no token twice or missing; the command
/// line over --server follows the pages, the UI links to the next one.
#[test]
fn token_lists_page_with_cursors() {
    let env = Env::new();
    let csv_path = env.dir.path().join("keys.csv");
    let mut csv = String::from("access_key_id,labels,host,path\n");
    for i in 0..250u64 {
        let key = honeytrail_core::keyid::synthesize(123456789012, i);
        let fleet = if i % 2 == 0 { "even" } else { "odd" };
        csv.push_str(&format!("{key},fleet={fleet},host-{i},/srv/.env\n"));
    }
    std::fs::write(&csv_path, &csv).unwrap();
    env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap()]).ok();
    add_user(&env, "vera", "viewer");
    let token = api_token(&env, "vera");
    let server = Server::start(&env, &[]);
    let bearer = format!("Bearer {token}");
    let get = |path: &str| api_page(&server, &bearer, path);
    let (status, first, next, head) = get("/tokens");
    assert_eq!((status, first.as_array().unwrap().len()), (200, 100), "the default page size");
    assert!(head.to_lowercase().contains("link: </api/v1/tokens?cursor="), "{head}");
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tokens?limit=70&cursor={c}"),
            None => "/tokens?limit=70".to_string(),
        };
        let (status, page, next, _) = get(&path);
        assert_eq!(status, 200);
        seen.extend(page.as_array().unwrap().iter().map(|t| t["access_key_id"].as_str().unwrap().to_string()));
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (250, 250), "every token once");
    assert!(next.is_some());
    // Filters apply before the page is cut.
    let (_, odd, _, _) = get("/tokens?label=fleet%3Dodd&limit=1000");
    assert_eq!(odd.as_array().unwrap().len(), 125);
    // A label's pages, walked: each odd key once.
    let (mut odd_seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/tokens?label=fleet%3Dodd&limit=50&cursor={c}"),
            None => "/tokens?label=fleet%3Dodd&limit=50".to_string(),
        };
        let (_, page, next, _) = get(&path);
        for t in page.as_array().unwrap() {
            assert_eq!(t["labels"]["fleet"], "odd");
            odd_seen.push(t["access_key_id"].as_str().unwrap().to_string());
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let distinct: std::collections::BTreeSet<&String> = odd_seen.iter().collect();
    assert_eq!((odd_seen.len(), distinct.len()), (125, 125));
    let (_, placed, _, _) = get("/tokens?host=host-24");
    assert_eq!(placed.as_array().unwrap().len(), 11, "host-24 and host-240..249 contain it");
    assert_eq!(get("/tokens?limit=5000").0, 400);
    assert_eq!(get("/tokens?cursor=forged").0, 400);
    // Placements page the same way.
    let (status, placed, next, _) = get("/placements?limit=100");
    assert_eq!((status, placed.as_array().unwrap().len()), (200, 100));
    let (_, rest, last, _) = get(&format!("/placements?limit=1000&cursor={}", next.unwrap()));
    assert_eq!((rest.as_array().unwrap().len(), last), (150, None));
    // The command line over --server reads every page.
    let url = format!("http://127.0.0.1:{}", server.port);
    let out =
        env.command(&["--server", &url, "token", "list", "--json"]).env("HONEYTRAIL_TOKEN", &token).output().unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 250);
    let out = env
        .command(&["--server", &url, "placement", "list", "--json"])
        .env("HONEYTRAIL_TOKEN", &token)
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 250);
}

/// Incidents page too, latest activity first, each once.
#[test]
fn incident_lists_page_with_cursors() {
    let env = Env::new();
    let csv_path = env.dir.path().join("keys.csv");
    let mut csv = String::from("access_key_id\n");
    let keys: Vec<String> = (0..30u64).map(|i| honeytrail_core::keyid::synthesize(123456789012, i)).collect();
    for k in &keys {
        csv.push_str(&format!("{k}\n"));
    }
    std::fs::write(&csv_path, &csv).unwrap();
    env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap()]).ok();
    let records: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let t = format!("2026-11-28T10:{:02}:00Z", i % 3);
            trail_record(k, "svc", &format!("e{i}"), &t, "s3.amazonaws.com", "ListBuckets", None)
        })
        .collect();
    ingest_records(&env, records);
    add_user(&env, "vera", "viewer");
    let token = api_token(&env, "vera");
    let server = Server::start(&env, &[]);
    let bearer = format!("Bearer {token}");
    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/incidents?limit=7&cursor={c}"),
            None => "/api/v1/incidents?limit=7".to_string(),
        };
        let (status, head, body) =
            honeytrail_testkit::http_full(server.port, "GET", &path, &[("Authorization", &bearer)], "").unwrap();
        assert_eq!(status, 200, "{body}");
        let page: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert!(page.len() <= 7);
        seen.extend(page.iter().map(|i| (i["last_seen"].as_str().unwrap().to_string(), i["id"].as_i64().unwrap())));
        match head.lines().find_map(|l| l.strip_prefix("x-next-cursor: ")) {
            Some(c) => cursor = Some(c.trim().to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30, "every incident once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "latest activity first, across pages");
    let (status, html) = server.call("GET", "/incidents", &[], "");
    assert_eq!(status, 303, "{html}");
}

/// Signs `user` in through the login form and chooses a new password when
/// `password` was a one-time one; the session cookie.
/// Events, deliveries, users and the audit log page like the other lists,
/// in the API, the UI and the command line; a large incident's record
/// lists its earliest and latest events and the most frequent values of its
/// activity, and says how many there are in all.
#[test]
fn every_list_pages_and_large_incidents_stay_bounded() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let records: Vec<serde_json::Value> = (0..620)
        .map(|n| {
            let t = format!("2026-11-28T10:{:02}:{:02}Z", n / 120, (n / 2) % 60);
            let mut r = trail_record(KEY, "svc", &format!("big-{n:04}"), &t, "s3.amazonaws.com", "ListBuckets", None);
            r["userAgent"] = format!("agent-{n:04}").into();
            r
        })
        .collect();
    ingest_records(&env, records);
    let admin_password = add_user(&env, "ada", "admin");
    for name in ["vic", "val", "vera", "vlad", "viv", "vince", "vio"] {
        add_user(&env, name, "viewer");
    }
    let token = api_token(&env, "ada");
    let server = Server::start(&env, &[]);
    let bearer = format!("Bearer {token}");
    let get = |path: &str| {
        let (status, page, next, _) = api_page(&server, &bearer, path);
        (status, page, next)
    };
    let walk = |path: &str, limit: usize| {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (mut all, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let (status, page, next) = get(&url);
            assert_eq!(status, 200, "{url}: {page}");
            let page = page.as_array().unwrap().clone();
            assert!(page.len() <= limit);
            all.extend(page);
            match next {
                Some(n) => cursor = Some(n),
                None => return all,
            }
        }
    };
    // The record: bounded, with totals.
    let (status, record, _) = get("/incidents/1");
    assert_eq!(status, 200);
    assert_eq!(record["incident"]["event_count"], 620);
    let listed: Vec<&str> =
        record["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 500);
    assert_eq!((listed[0], listed[249], listed[250], listed[499]), ("big-0000", "big-0249", "big-0370", "big-0619"));
    assert_eq!(record["activity"]["user_agents"].as_array().unwrap().len(), 100);
    assert_eq!(record["activity"]["distinct"]["user_agents"], 620);
    // Every event, a page at a time.
    let events = walk("/incidents/1/events", 90);
    let ids: Vec<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, (0..620).map(|n| format!("big-{n:04}")).collect::<Vec<_>>());
    assert!(events[0]["detection_delay_seconds"].is_i64());
    assert_eq!(get("/incidents/1/events?limit=0").0, 400);
    assert_eq!(get("/incidents/1/events?cursor=i1.1").0, 400, "another list's cursor is refused");
    assert_eq!(get("/incidents/99/events").0, 404);
    // Users by name, the audit log newest first.
    let users = walk("/users", 3);
    let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!((names.len(), &names), (8, &sorted), "ada and seven viewers, each once");
    let audit = walk("/audit", 4);
    let ids: Vec<i64> = audit.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.len() >= 8 && ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let (status, page, next) = get("/audit?limit=2");
    assert_eq!((status, page.as_array().unwrap().len(), next.is_some()), (200, 2, true));
    let (status, page, _) = get("/deliveries?state=pending&limit=1000");
    assert_eq!((status, page.is_array()), (200, true));
    assert_eq!(get("/deliveries?state=dead&limit=1001").0, 400);
    assert_eq!(get("/deliveries?state=lost").0, 400);
    // The command line: every event, here and over --server.
    let local: serde_json::Value =
        serde_json::from_str(&env.run(&["incident", "events", "1", "--json"]).ok().stdout).unwrap();
    assert_eq!(local.as_array().unwrap().len(), 620);
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = env
        .command(&["--server", &url, "incident", "events", "1", "--json"])
        .env("HONEYTRAIL_TOKEN", &token)
        .output()
        .unwrap();
    let remote: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(remote, local);
    let shown = env.run(&["incident", "show", "1"]).ok().stdout;
    assert!(shown.contains("… 120 more events; `honeytrail incident events 1` lists every one"), "{shown}");
    let out = env
        .command(&["--server", &url, "audit", "list", "--limit", "3", "--json"])
        .env("HONEYTRAIL_TOKEN", &token)
        .output()
        .unwrap();
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 3);
    // The UI: a link to every event, and next-page links.
    let cookie = ui_cookie(&server, "ada", &admin_password);
    let page = |path: &str| {
        let (status, html) = server.call("GET", path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{path}: {html}");
        html
    };
    let html = page("/incidents/1");
    assert!(html.contains("id=\"all-events\"") && html.contains("500 of 620 events"), "{html}");
    let html = page("/incidents/1/events");
    assert_eq!(html.matches("<tr class=\"event\">").count(), 100);
    let link = html.split("<a href=\"").find(|s| s.contains("id=\"next-page\"")).expect("a next-page link");
    let next = link[..link.find('"').unwrap()].replace("&amp;", "&").replace("&#x2f;", "/");
    assert!(next.starts_with("/incidents/1/events?cursor="), "{next}");
    let html = page(&next);
    assert_eq!(html.matches("<tr class=\"event\">").count(), 100);
    assert!(html.contains("agent-0100") && !html.contains("agent-0099"), "the second page");
    assert!(page("/audit").contains("id=\"audit-csv\""));
    assert!(page("/users").contains("vince"));
    assert!(page("/channels").contains("Dead-lettered deliveries"));
}

#[test]
fn reads_of_bait_are_served_by_the_api_and_shown_escaped_in_the_ui() {
    let env = Env::new();
    env.run_stdin(&["token", "import", "aws", "--access-key-id", KEY, "--secret-stdin"], SECRET).ok();
    env.run(&["placement", "add", KEY, "--host", "web-1", "--path", "/opt/app/.env"]).ok();
    // A process whose name is markup: what any user on the host can make.
    let evil = "/tmp/<script>alert(1)</script>";
    let hex: String = evil.bytes().map(|b| format!("{b:02X}")).collect();
    let log = format!(
        "node=web-1 type=SYSCALL msg=audit(1764756131.1:9): syscall=257 success=yes ppid=2 pid=3 uid=0 euid=0 auid=0 ses=1 comm=\"x\" exe={hex}\n\
         node=web-1 type=PATH msg=audit(1764756131.1:9): item=0 name=\"/opt/app/.env\" nametype=NORMAL\n"
    );
    assert!(env.run_stdin(&["ingest", "auditd", "-"], &log).ok().stderr.contains("1 filed now"));
    let window = [("HONEYTRAIL_EVIDENCE_TOUCH_WINDOW", "1s")];
    let out = env.command(&["fleet", "sweep"]).envs(window).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 with none"), "{out:?}");
    let viewer = add_user(&env, "vera", "viewer");
    add_user(&env, "emil", "employee");
    let vera = api_token(&env, "vera");
    let emil = api_token(&env, "emil");
    let server = Server::start(&env, &[]);
    let bearer = format!("Bearer {vera}");

    let (status, reads, _, _) = api_page(&server, &bearer, &format!("/evidence?token={KEY}"));
    assert_eq!(status, 200, "{reads}");
    assert_eq!(reads[0]["host"], "web-1");
    assert_eq!(reads[0]["access"]["process"]["exe"], evil);
    assert_eq!(reads[0]["touch"], "touched");
    let (status, rules) = server.call("GET", "/api/v1/auditd/rules?host=web-1", &[("Authorization", &bearer)], "");
    assert_eq!((status, rules.as_str()), (200, "-w /opt/app/.env -p r -k honeytrail\n"));
    let (status, _) = server.call("GET", "/api/v1/evidence", &[("Authorization", &format!("Bearer {emil}"))], "");
    assert_eq!(status, 403, "an employee sees no evidence");
    let (status, _) = server.call("GET", "/api/v1/evidence?host=web-1&bogus=1", &[("Authorization", &bearer)], "");
    assert_eq!(status, 400);
    // An agent credential nobody was given files nothing.
    let (status, _) = server.call(
        "POST",
        "/api/v1/fleet/evidence",
        &[("Authorization", "Bearer hta_forged"), ("Content-Type", "application/json")],
        "{\"records\": []}",
    );
    assert_eq!(status, 401);

    let cookie = ui_cookie(&server, "vera", &viewer);
    let (status, page) = server.call("GET", &format!("/tokens/{KEY}"), &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let reads_card = page.split("id=\"reads\"").nth(1).expect("the reads card");
    assert!(reads_card.contains("&lt;script&gt;") && !page.contains("<script>alert"), "{reads_card}");
    let incidents = env.run(&["incident", "list", "--all", "--json"]).ok().json();
    let id = incidents.as_array().unwrap().iter().find(|i| i["kind"] == "touched").expect("touched")["id"].clone();
    let (_, page) = server.call("GET", &format!("/incidents/{id}"), &[("Cookie", &cookie)], "");
    assert!(
        page.contains("timeline-read") && page.contains("bait read on web-1: &#x2f;opt&#x2f;app&#x2f;.env"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));
}

/// Every key path of a JSON value, arrays as `[]`: `[].placement.spot.host`.
fn key_paths(value: &serde_json::Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{at}.{k}");
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                key_paths(v, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

/// The public API's shape is pinned: the key paths every read endpoint
/// answers with, for a store holding one of everything, are in
/// `tests/api-shape.txt`. A change of the store's schema or of a type cannot
/// change what clients read without this test failing; a deliberate change
/// rewrites the file with `HONEYTRAIL_UPDATE_API_SHAPE=1`.
#[test]
fn the_api_answers_in_the_shape_it_documents() {
    let env = Env::new();
    env.run_stdin(
        &[
            "token",
            "import",
            "aws",
            "--access-key-id",
            KEY,
            "--user-name",
            "svc-reader",
            "--secret-stdin",
            "--label",
            "team=web",
        ],
        SECRET,
    )
    .ok();
    env.run(&["placement", "add", KEY, "--host", "web-7", "--path", "/srv/.env", "--owner", "ops"]).ok();
    env.run(&["custody", "add", KEY, "copied to the build server"]).ok();
    let jsonl = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "siem", "--path", jsonl.to_str().unwrap()]).ok();
    env.run(&["route", "add", "all", "--channel", "siem", "--default"]).ok();
    // `enroll`, the alias, so the test also runs against builds from before the one spelling.
    env.run(&["enroll", "create", "--uses", "2", "--label", "fleet=web"]).ok();
    env.run(&["action", "add", "fence", "--kind", "deny-policy", "--mode", "dry-run"]).ok();
    add_user(&env, "ada", "admin");
    let admin = format!("Bearer {}", api_token(&env, "ada"));
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    use_key(&server, "shape-1");
    env.run(&["deliver", "--once"]).ok();
    let mut paths = std::collections::BTreeSet::new();
    for endpoint in [
        "/me",
        "/incidents",
        "/incidents/1",
        "/incidents/1/events",
        "/tokens",
        &format!("/tokens/{KEY}"),
        "/placements",
        "/channels",
        "/routes",
        "/runbooks",
        "/deliveries?state=delivered",
        "/users",
        "/api-tokens",
        "/enrollments",
        "/templates",
        "/templates/laptop",
        "/actions",
        "/actions/runs",
        "/audit?limit=3",
    ] {
        let (status, body, _, _) = api_page(&server, &admin, endpoint);
        assert_eq!(status, 200, "GET {endpoint}: {body}");
        let mut found = std::collections::BTreeSet::new();
        key_paths(&body, "", &mut found);
        paths.extend(found.into_iter().map(|p| format!("GET {} {p}", endpoint.split('?').next().unwrap())));
    }
    let shape: String = paths.into_iter().map(|p| p + "\n").collect();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api-shape.txt");
    if std::env::var_os("HONEYTRAIL_UPDATE_API_SHAPE").is_some() {
        std::fs::write(&golden, &shape).unwrap();
    }
    let pinned = std::fs::read_to_string(&golden).unwrap_or_default();
    if shape != pinned {
        let (now, was): (std::collections::BTreeSet<&str>, std::collections::BTreeSet<&str>) =
            (shape.lines().collect(), pinned.lines().collect());
        panic!(
            "the API's shape changed; if that is meant, run with HONEYTRAIL_UPDATE_API_SHAPE=1 and say so in the docs.\n\
             new: {:#?}\ngone: {:#?}",
            now.difference(&was).collect::<Vec<_>>(),
            was.difference(&now).collect::<Vec<_>>()
        );
    }
}

#[test]
fn sign_in_returns_to_the_page_asked_for_and_never_to_another_site() {
    let env = Env::new();
    let password = add_user(&env, "rob", "responder");
    let server = Server::start(&env, &[]);
    let port = server.port;
    // A page asked for without a session: to the sign-in page, which remembers it.
    let (status, head, _) = honeytrail_testkit::http_full(port, "GET", "/incidents/7?tab=events", &[], "").unwrap();
    assert_eq!(status, 303);
    assert!(head.contains("location: /login?next=%2Fincidents%2F7%3Ftab%3Devents"), "{head}");
    let sign_in = |next: &str, pass: &str| -> String {
        let (status, head, page) =
            sign_in_form(port, &format!("/login?next={next}"), &format!("user=rob&password={pass}&next={next}"));
        assert_eq!(status, 303, "{head}");
        let to = head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap().trim().to_string();
        format!("{} {to}", page.contains("name=\"next\""))
    };
    assert_eq!(sign_in("%2Fincidents%2F7%3Ftab%3Devents", &password), "true /incidents/7?tab=events");
    // A wrong password keeps the page to return to.
    assert_eq!(sign_in("%2Ftokens", "wrong"), "true /login?error=invalid&next=%2Ftokens");
    // Never to another site, nor back to the sign-in page.
    for hostile in [
        "%2F%2Fevil.example%2Fx",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%2F%09%2Fevil.example",
        "%2Flogin",
        "javascript%3Aalert(1)",
    ] {
        assert_eq!(sign_in(hostile, &password), "false /", "{hostile}");
    }
}

/// Opens the sign-in page at `page` (its form and nonce cookie), then posts
/// `fields` with the nonce: the answer's status and head, and the form page.
fn sign_in_form(port: u16, page: &str, fields: &str) -> (u16, String, String) {
    let (_, head, form_page) = honeytrail_testkit::http_full(port, "GET", page, &[], "").unwrap();
    let nonce = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ht_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cookie = format!("ht_login={nonce}");
    let (status, head, _) = honeytrail_testkit::http_full(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &cookie)],
        &format!("{fields}&csrf={nonce}"),
    )
    .unwrap();
    (status, head, form_page)
}

/// The dashboard's recent activity is newest first by when it happened (a
/// backlog file read late does not jump ahead) and includes incidents that
/// carry no CloudTrail event, such as a report of a found key.
#[test]
fn the_dashboard_lists_recent_activity_newest_first_with_reports() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    // The newer call is read first; an older one arrives later, from a backlog.
    let call = |id: &str, at: &str, source: &str, name: &str| trail_record(KEY, "svc", id, at, source, name, None);
    ingest_records(&env, vec![call("new-1", "2026-11-29T10:00:00Z", "s3.amazonaws.com", "ListBuckets")]);
    ingest_records(&env, vec![call("old-1", "2026-11-20T10:00:00Z", "iam.amazonaws.com", "ListUsers")]);
    let admin = add_user(&env, "ada", "admin");
    add_user(&env, "erin", "employee");
    let employee = api_token(&env, "erin");
    let server = Server::start(&env, &[]);
    let api = Api { server: &server };
    let (status, answer) =
        api.call(Some(&employee), "POST", "/lookup", Some(&serde_json::json!({"text": KEY}).to_string()));
    assert_eq!((status, &answer["decoy"]), (200, &serde_json::json!(true)), "{answer}");
    let cookie = ui_cookie(&server, "ada", &admin);
    let (_, html) = server.call("GET", "/", &[("Cookie", &cookie)], "");
    let recent = html.split("Recent activity").nth(1).unwrap_or_else(|| panic!("{html}"));
    let at = |what: &str| recent.find(what).unwrap_or_else(|| panic!("{what} listed: {recent}"));
    assert!(at("(report incident)") < at("ListBuckets"), "the report is the newest: {recent}");
    assert!(at("ListBuckets") < at("ListUsers"), "by event time, not by when it was read: {recent}");
}

/// Decoys on moto: planned from an inventory, made with their contents,
/// logged by the trail's selectors and checked by verify; an intruder's
/// call on any of them (by name, ARN, queue URL, object ARN, role ARN) is an
/// incident that names the decoy, the managing principal's own calls are
/// not; removal deletes it in AWS and keeps it watched. CLI and API.
#[test]
fn decoys_are_made_watched_and_removed_on_moto() {
    let moto = honeytrail_testkit::Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let cli = |args: &[&str]| {
        let (ok, out, err) = honeytrail_testkit::aws_cli(&moto.endpoint, "testing", "testing", args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    env.run(&["aws", "bootstrap", "--regions", "us-east-1"]).ok();

    // Plan from an inventory: nothing is made yet.
    let inventory = env.dir.path().join("inventory.txt");
    std::fs::write(&inventory, "# our systems\nledger\ns3-bucket acme-ledger-exports\nsecret prod/ledger/postgres\n")
        .unwrap();
    let plan_file = env.dir.path().join("plan.json");
    let kinds = ["s3-bucket", "ssm-parameter", "secret", "dynamodb-table", "sqs-queue", "iam-role"];
    let mut args = vec![
        "decoy",
        "plan",
        "--inventory",
        inventory.to_str().unwrap(),
        "--out",
        plan_file.to_str().unwrap(),
        "--json",
    ];
    let counts: Vec<String> = kinds.iter().map(|k| format!("{k}=1")).collect();
    for c in &counts {
        args.extend(["--count", c.as_str()]);
    }
    let plan = env.run(&args).ok().json();
    assert_eq!(plan["decoys"].as_array().unwrap().len(), 6, "{plan}");
    assert_eq!(plan["decoys"][0]["name"], "acme-ledger-exports");
    assert!(env.run(&["decoy", "list", "--json"]).ok().json().as_array().unwrap().is_empty(), "a plan makes nothing");
    let bad = env.dir.path().join("bad.txt");
    std::fs::write(&bad, "honeypot-data\n").unwrap();
    let refused = env.run(&["decoy", "plan", "--inventory", bad.to_str().unwrap()]).fails();
    assert!(refused.stderr.contains("tell-tale word"), "{}", refused.stderr);

    // Apply: made in AWS with contents, registered, their reads logged.
    let applied = env.run(&["decoy", "apply", "--plan", plan_file.to_str().unwrap(), "--json"]).ok().json();
    assert_eq!(applied["made"].as_array().unwrap().len(), 6, "{applied}");
    assert!(applied["failed"].as_array().unwrap().is_empty(), "{applied}");
    let name_of = |kind: &str| {
        applied["made"].as_array().unwrap().iter().find(|d| d["kind"] == kind).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let arn_of = |kind: &str| {
        applied["made"].as_array().unwrap().iter().find(|d| d["kind"] == kind).unwrap()["arn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (bucket, table, queue, role, parameter) = (
        name_of("s3-bucket"),
        name_of("dynamodb-table"),
        name_of("sqs-queue"),
        name_of("iam-role"),
        name_of("ssm-parameter"),
    );
    assert!(cli(&["s3api", "list-objects-v2", "--bucket", &bucket]).contains("summary.csv"));
    let secret: serde_json::Value =
        serde_json::from_str(&cli(&["secretsmanager", "get-secret-value", "--secret-id", "prod/ledger/postgres"]))
            .unwrap();
    assert!(secret["SecretString"].as_str().unwrap().contains("password"), "{secret}");
    assert!(cli(&["dynamodb", "scan", "--table-name", &table]).contains("\"Count\": 3"));
    cli(&["sqs", "get-queue-url", "--queue-name", &queue]);
    cli(&["ssm", "get-parameter", "--name", &parameter]);
    assert!(cli(&["iam", "get-role-policy", "--role-name", &role, "--policy-name", "default"]).contains("Deny"));
    let selectors = cli(&["cloudtrail", "get-event-selectors", "--trail-name", "account-trail"]);
    assert!(selectors.contains(&arn_of("dynamodb-table")) && selectors.contains(&arn_of("sqs-queue")), "{selectors}");
    let verify = env.run(&["aws", "verify", "--regions", "us-east-1", "--json"]).ok().json();
    let items = verify[0]["items"].as_array().unwrap();
    for item in items {
        assert_eq!(item["status"]["state"], "ok", "{item}");
    }
    assert!(items.iter().any(|i| i["item"] == "decoys"), "{verify}");

    // Calls on the decoys, as CloudTrail writes them.
    let listed = env.run(&["decoy", "list", "--json"]).ok().json();
    let manager = listed[0]["managed_by"].as_str().unwrap().to_string();
    assert!(listed.as_array().unwrap().iter().all(|d| d["findings"][0]["level"] == "pass"), "{listed}");
    let call = |id: &str,
                who: &str,
                source: &str,
                name: &str,
                params: serde_json::Value,
                resources: serde_json::Value| {
        serde_json::json!({
            "eventVersion": "1.09", "eventID": id, "eventTime": "2026-12-07T10:00:00Z", "eventSource": source,
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.77", "userAgent": "aws-cli/2.15",
            "userIdentity": {"type": "IAMUser", "arn": who, "accountId": "123456789012", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
            "requestParameters": params, "resources": resources, "recipientAccountId": "123456789012"
        })
    };
    let intruder = "arn:aws:iam::123456789012:user/contractor";
    let queue_url = format!("https://sqs.us-east-1.amazonaws.com/123456789012/{queue}");
    ingest_records(
        &env,
        vec![
            call(
                "d-1",
                intruder,
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
                serde_json::json!({"secretId": "prod/ledger/postgres"}),
                serde_json::json!(null),
            ),
            call(
                "d-2",
                &manager,
                "secretsmanager.amazonaws.com",
                "DescribeSecret",
                serde_json::json!({"secretId": "prod/ledger/postgres"}),
                serde_json::json!(null),
            ),
            call(
                "d-3",
                intruder,
                "s3.amazonaws.com",
                "GetObject",
                serde_json::json!({"bucketName": bucket, "key": "README.txt"}),
                serde_json::json!([{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/README.txt")}]),
            ),
            call(
                "d-4",
                intruder,
                "sqs.amazonaws.com",
                "ReceiveMessage",
                serde_json::json!({"queueUrl": queue_url}),
                serde_json::json!(null),
            ),
            call(
                "d-5",
                intruder,
                "sts.amazonaws.com",
                "AssumeRole",
                serde_json::json!({"roleArn": arn_of("iam-role"), "roleSessionName": "x"}),
                serde_json::json!(null),
            ),
            call(
                "d-6",
                intruder,
                "s3.amazonaws.com",
                "GetObject",
                serde_json::json!({"bucketName": format!("{bucket}-copy"), "key": "x"}),
                serde_json::json!(null),
            ),
        ],
    );
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(
        incidents.as_array().unwrap().len(),
        4,
        "the four intruder calls on decoys, not the manager's: {incidents}"
    );
    let secret_token =
        applied["made"].as_array().unwrap().iter().find(|d| d["kind"] == "secret").unwrap()["token_id"].clone();
    let on_secret = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["token_id"] == secret_token)
        .expect("an incident on the secret");
    let shown = env.run(&["incident", "show", &on_secret["id"].to_string(), "--json"]).ok().json().to_string();
    assert!(
        shown.contains("decoy-secret") && shown.contains(&arn_of("secret")),
        "the incident names the decoy: {shown}"
    );

    // The self-test covers decoys; a decoy is not retired as a key is.
    let checked = env.run(&["check", "--all", "--json"]).ok().json();
    assert_eq!(checked.as_array().unwrap().len(), 6, "{checked}");
    let refused = env.run(&["token", "retire", &secret_token.to_string()]).fails();
    assert!(refused.stderr.contains("decoy remove"), "{}", refused.stderr);

    // The API: admins plan and remove, viewers list.
    add_user(&env, "ada", "admin");
    add_user(&env, "vera", "viewer");
    let (admin, viewer) = (api_token(&env, "ada"), api_token(&env, "vera"));
    let server = Server::start(&env, &[]);
    let api = Api { server: &server };
    let (status, listed) = api.call(Some(&viewer), "GET", "/decoys", None);
    assert_eq!((status, listed.as_array().unwrap().len()), (200, 6), "{listed}");
    let (status, planned) = api.call(Some(&admin), "POST", "/decoys/plan", Some(r#"{"counts": ["sqs-queue=2"]}"#));
    assert_eq!((status, planned["decoys"].as_array().unwrap().len()), (200, 2), "{planned}");
    assert!(!planned.to_string().contains(&format!("\"{queue}\"")), "a name in use is never planned again");
    let (status, body) = api.call(Some(&admin), "POST", "/decoys/plan", Some(r#"{"counts": ["queue=2"]}"#));
    assert_eq!(status, 400, "{body}");
    let bucket_token =
        applied["made"].as_array().unwrap().iter().find(|d| d["kind"] == "s3-bucket").unwrap()["token_id"].clone();
    let (status, _) = api.call(Some(&viewer), "DELETE", &format!("/decoys/{bucket_token}"), None);
    assert_eq!(status, 403);
    let (status, removed) = api.call(Some(&admin), "DELETE", &format!("/decoys/{bucket_token}"), None);
    assert_eq!(status, 200, "{removed}");
    assert!(removed["removed_at"].is_string(), "{removed}");
    let (ok, _, _) = honeytrail_testkit::aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["s3api", "head-bucket", "--bucket", &bucket],
    );
    assert!(!ok, "the bucket is gone from AWS");
    let verify = env.run(&["aws", "verify", "--regions", "us-east-1", "--json"]).ok().json();
    assert!(verify[0]["items"].as_array().unwrap().iter().all(|i| i["status"]["state"] == "ok"), "{verify}");
    // A removed decoy is still watched.
    ingest_records(
        &env,
        vec![call(
            "d-7",
            intruder,
            "s3.amazonaws.com",
            "ListObjects",
            serde_json::json!({"bucketName": bucket}),
            serde_json::json!(null),
        )],
    );
    let after = env.run(&["incident", "list", "--json"]).ok().json();
    let events: i64 = after.as_array().unwrap().iter().map(|i| i["event_count"].as_i64().unwrap_or(1)).sum();
    assert!(events >= 5, "the call on the removed bucket is recorded: {after}");
}
