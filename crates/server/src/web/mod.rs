//! Server-rendered HTML: MiniJinja templates compiled into the binary, with
//! HTML auto-escaping on, so nothing a user, an intruder's user agent or a
//! CloudTrail record says is ever interpreted as markup.

pub mod chart;

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

/// Every template, by name; `base.html` is the layout the others extend.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("message.html", include_str!("templates/message.html")),
    ("answer.html", include_str!("templates/answer.html")),
    ("login.html", include_str!("templates/login.html")),
    ("account.html", include_str!("templates/account.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("incidents.html", include_str!("templates/incidents.html")),
    ("incident.html", include_str!("templates/incident.html")),
    ("run_rows.html", include_str!("templates/run_rows.html")),
    ("actions.html", include_str!("templates/actions.html")),
    ("events.html", include_str!("templates/events.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
    ("token.html", include_str!("templates/token.html")),
    ("placements.html", include_str!("templates/placements.html")),
    ("alerting.html", include_str!("templates/alerting.html")),
    ("users.html", include_str!("templates/users.html")),
    ("api_tokens.html", include_str!("templates/api_tokens.html")),
    ("enrollments.html", include_str!("templates/enrollments.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("ci.html", include_str!("templates/ci.html")),
    ("decoys.html", include_str!("templates/decoys.html")),
    ("deploy.html", include_str!("templates/deploy.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("cluster.html", include_str!("templates/cluster.html")),
    ("accounts.html", include_str!("templates/accounts.html")),
    ("lookup.html", include_str!("templates/lookup.html")),
    ("secret_once.html", include_str!("templates/secret_once.html")),
    ("bait.html", include_str!("templates/bait.html")),
    ("doc.html", include_str!("templates/doc.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        // Every value shown has its hidden characters (zero-width, bidirectional,
        // control) made visible before it is escaped: an instance ID with a
        // zero-width space cannot pass for another, U+202E cannot reverse a name.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(text) if !value.is_safe() && honeytrail_core::encoding::has_hidden(text) => {
                let shown = minijinja::Value::from(honeytrail_core::encoding::visible(text).into_owned());
                minijinja::escape_formatter(out, state, &shown)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Delays in the units a person reads ("30 min", not "1800 s").
        env.add_filter("duration", |seconds: Option<i64>| {
            seconds.map_or_else(|| "?".to_string(), honeytrail_core::describe::duration_words)
        });
        // Times as people read them: absolute in UTC and how long ago, on one line.
        env.add_filter("when", |v: Option<String>, none: Option<String>| match v {
            Some(raw) => minijinja::Value::from_safe_string(when_html(&raw, chrono::Utc::now())),
            None => minijinja::Value::from(none.unwrap_or_else(|| "–".into())),
        });
        // Charts: data in, SVG out, every label escaped by the chart code.
        env.add_function("time_chart", |c: minijinja::Value| chart_of(c, chart::time_chart));
        env.add_function("bar_chart", |c: minijinja::Value| chart_of(c, chart::bar_chart));
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("shipped templates compile");
        }
        env
    })
}

/// A stored time as `<time>`: minute and zone, then how long ago, never
/// wrapped; the full second in its tooltip. Text that is not a time is
/// shown escaped, as it is.
fn when_html(raw: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&chrono::Utc)) else {
        return minijinja::HtmlEscape(&honeytrail_core::encoding::visible(raw)).to_string();
    };
    let ago = (now - t).num_seconds();
    let relative = match ago {
        -59..=59 => "just now".to_string(),
        a if a > 0 => format!("{} ago", honeytrail_core::describe::duration_words(coarse(a))),
        a => format!("in {}", honeytrail_core::describe::duration_words(coarse(-a))),
    };
    format!(
        "<time class=\"t\" datetime=\"{}\" title=\"{}\">{} <small>({relative})</small></time>",
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        t.format("%Y-%m-%d %H:%M:%S UTC"),
        t.format("%Y-%m-%d %H:%M")
    )
}

/// Seconds rounded to the unit that matters at that size (a minute past an hour).
fn coarse(seconds: i64) -> i64 {
    if seconds < 86_400 {
        seconds / 60 * 60
    } else {
        seconds / 3_600 * 3_600
    }
}

/// The SVG `draw` makes of a chart's data, as markup the page keeps as is.
fn chart_of<T: serde::de::DeserializeOwned>(
    data: minijinja::Value,
    draw: fn(&T) -> String,
) -> Result<minijinja::Value, minijinja::Error> {
    let chart = T::deserialize(data).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("chart data does not fit: {e}"))
    })?;
    Ok(minijinja::Value::from_safe_string(draw(&chart)))
}

/// Renders a page. A template error is a bug; it is logged and a plain
/// message shown instead of half a page.
pub fn render(name: &str, context: impl Serialize) -> String {
    let result = env().get_template(name).and_then(|t| t.render(minijinja::value::Serde(&context)));
    match result {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(template = name, error = %format!("{e:#}"), "a page failed to render");
            "<!doctype html><title>honeytrail</title><p>This page failed to render; the server log has the details.</p>"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_moment_and_how_long_ago() {
        let now: chrono::DateTime<chrono::Utc> = "2026-12-07T12:00:00Z".parse().unwrap();
        let html = when_html("2026-12-07T09:25:31.123Z", now);
        assert!(html.contains(">2026-12-07 09:25 <small>(2 h 34 min ago)</small>"), "{html}");
        assert!(html.contains("title=\"2026-12-07 09:25:31 UTC\""), "{html}");
        assert!(when_html("2026-12-07T11:59:30Z", now).contains("just now"));
        assert!(when_html("2026-12-09T12:00:00Z", now).contains("(in 2 d)"));
        assert_eq!(when_html("<b>soon</b>", now), "&lt;b&gt;soon&lt;&#x2f;b&gt;");
    }

    #[test]
    fn hidden_characters_are_shown_on_every_page() {
        let html =
            render("message.html", minijinja::context! {title => "t", message => "i-\u{200b}0abc \u{202e}fdp.exe"});
        assert!(html.contains("i-\\u{200b}0abc \\u{202e}fdp.exe"), "{html}");
        assert!(!html.contains('\u{200b}') && !html.contains('\u{202e}'));
    }

    #[test]
    fn every_template_compiles_and_escapes() {
        for (name, _) in TEMPLATES {
            env().get_template(name).unwrap();
        }
        let me = serde_json::json!({"name": "ada", "role": "admin"});
        let user = serde_json::json!({"name": "vic", "role": "viewer", "disabled": false, "must_change_password": true, "created_at": "2026-11-28T09:00:00Z"});
        let entry = serde_json::json!({"at": "2026-11-28T09:00:00Z", "actor": "ada", "action": "user.create", "target": "vic", "detail": null, "from": "127.0.0.1"});
        for (name, ctx) in [
            (
                "users.html",
                serde_json::json!({"title": "Users", "me": me, "csrf": "c", "users": [user], "next": "/users?cursor=u76", "created": user, "password": "pw"}),
            ),
            (
                "enrollments.html",
                serde_json::json!({"title": "Enrolment", "me": me, "csrf": "c", "created": {"id": 2}, "secret": "s3cr3t",
                    "enrollments": [{"id": 2, "used": 0, "uses": null, "expires_at": "2026-12-09T09:00:00Z", "labels_text": "fleet=<b>web</b>",
                        "template": "laptop", "created_by": "vic", "state": "active", "allowed_text": "10.0.0.0/8",
                        "expected": 3, "ec2_text": "123456789012", "refused": 2, "last_refusal": "host <b>evil</b> refused"}],
                        "templates": ["laptop", "server"]}),
            ),
            (
                "fleet.html",
                serde_json::json!({"title": "Fleet", "me": me, "csrf": "c", "can_respond": true, "stale_after": "3 h",
                    "charts": {"hosts": {"title": "Hosts", "items": [{"label": "active", "count": 1, "tone": "active"}], "more": 0},
                        "bait": {"title": "Bait", "items": [{"label": "vic<b>x</b>", "count": 1, "tone": "x"}], "more": 2},
                        "in_place": {"title": "In place", "unit": "files", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "values": [1, 2, 2], "area": true, "marks": []},
                        "tamper": {"title": "Tamper", "unit": "findings", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "values": [0, 1, 0], "area": false,
                            "marks": [{"at": "2026-11-15T00:00:00Z", "label": "<b>m</b>", "tone": "first"}]}},
                    "pool": {"size": 3, "target": 10, "iam_users": 4, "quota": 5000, "warning": "near <b>quota</b>"},
                    "agents": [{"id": 1, "token_id": 5, "host": {"hostname": "vic<b>-box</b>", "machine_id": "m", "instance_id": null},
                        "access_key_id": "AKIAQYLPMN5HHHFPZAM2", "state": "active", "bait_state": "tampered", "last_seen_at": null,
                        "watch": "off: <b>no</b>", "evidence_dropped": 3, "evidence_refused": 2,
                        "session_expires_at": null, "session_expired": false,
                        "open_command": false, "files": [{"path": "/home/<b>x</b>", "local_user": "vic", "presence": "altered", "removed_at": null}],
                        "commands": [{"id": 3, "kind": "rotate", "state": "done"}]},
                        {"id": 2, "token_id": 6, "host": {"hostname": "vic<b>-cache</b>", "machine_id": "<b>m</b>", "instance_id": "i-<b>x</b>"},
                        "access_key_id": "ASIAQYLPMN5HPLZXQ3NB", "state": "active", "bait_state": "ok", "last_seen_at": "2026-11-28T09:00:00Z",
                        "watch": "fanotify", "evidence_dropped": 0, "evidence_refused": 0,
                        "session_expires_at": "2026-11-28T15:00:00Z", "session_expired": true,
                        "open_command": false, "files": [], "commands": [{"id": 4, "kind": "refresh", "state": "sent"}]}]}),
            ),
            (
                "ci.html",
                serde_json::json!({"title": "CI runs", "me": me, "csrf": "c", "next": "/ci?cursor=c3",
                    "runs": [{"id": 4, "token_id": 7, "described": "GitHub Actions run 1 of vic/<b>x</b>", "url": "https://github.com/vic/x\"><b>",
                        "access_key_id": "AKIAQYLPMN5HHHFPZAM2", "source_address": "198.51.100.4", "opened_at": "2026-11-28T09:00:00Z",
                        "state": "closed", "closed_at": "2026-11-28T09:10:00Z", "window_ends_at": "2026-11-28T15:00:00Z",
                        "expect": "runner", "expected_uses": 1, "incidents": [7],
                        "expected": [{"event_time": "2026-11-28T09:01:00Z", "event_name": "<b>Get</b>", "source_ip": "198.51.100.4"}]}]}),
            ),
            (
                "decoys.html",
                serde_json::json!({"title": "Decoys", "me": me, "csrf": "c", "applied": {"made": 1,
                    "failed": [{"kind": "secret", "name": "vic<b>x</b>", "why": "denied <b>x</b>"}]},
                    "plan": {"account": "east<b>x</b>", "decoys": [{"kind": "s3-bucket", "name": "vic<b>y</b>"}]},
                    "plan_json": "{\"decoys\":[{\"name\":\"\\\"><b>x</b>\"}]}",
                    "decoys": [{"label": "S3 bucket", "verdict": "warn", "finding": "name <b>x</b>",
                        "decoy": {"token_id": 3, "kind": "s3-bucket", "name": "vic<b>z</b>", "arn": "arn:aws:s3:::vic",
                            "account_id": "123456789012", "region": "us-east-1", "pool_account": "p<b>x</b>",
                            "managed_by": "arn:aws:iam::1:user/a", "created_at": "2026-11-28T09:00:00Z", "removed_at": null}}]}),
            ),
            (
                "deploy.html",
                serde_json::json!({"title": "Deploy", "me": me, "csrf": "c", "kinds": ["cloud-init", "shell"], "kind": "shell",
                    "secret_name": "/a<b>x</b>", "service_name": "inv", "snippet": "sh -c '<b>x</b>'", "error": "bad <b>name</b>",
                    "server": "https://h<b>x</b>", "can_respond": true}),
            ),
            (
                "audit.html",
                serde_json::json!({"title": "Audit", "me": me, "csrf": "c", "entries": [entry], "next": null}),
            ),
            (
                "cluster.html",
                serde_json::json!({"title": "Cluster", "me": me, "csrf": "c", "lease_seconds": 30,
                    "replicas": [{"id": "vic-<b>1</b>", "address": "10.0.0.1:8080", "version": "0.1.0", "state": "up",
                        "started_at": "2026-11-28T09:00:00Z", "last_heartbeat": "2026-11-28T09:01:00Z"}],
                    "jobs": [{"name": "fleet", "holder": "vic-<b>1</b>", "lease_end": "2026-11-28T09:01:30Z",
                        "last_run": null, "last_run_by": null, "last_error": "db <b>down</b>"}]}),
            ),
            (
                "accounts.html",
                serde_json::json!({"title": "Canary accounts", "me": me, "csrf": "c", "default_max_users": 4500,
                    "accounts": [{"room": 2, "account": {"name": "east", "account_id": "111111111111",
                        "role_arn": "arn:aws:iam::111111111111:role/vic<b>x</b>", "profile": null, "max_users": 4,
                        "added_at": "2026-11-28T09:00:00Z", "added_by": "vic", "users": 2, "keys": 3}},
                        {"room": 5, "account": {"name": "west", "account_id": "222222222222", "role_arn": null,
                        "profile": "p<b>x</b>", "max_users": 5, "added_at": "2026-11-28T09:00:00Z", "added_by": "vic",
                        "users": 0, "keys": 0}}]}),
            ),
            (
                // Every registered channel kind's form, from its settings.
                "alerting.html",
                serde_json::json!({"title": "Alerting", "me": me, "csrf": "c", "is_admin": true, "can_respond": true,
                    "channels": [{"name": "vic<b>s</b>", "kind": "webhook", "enabled": true}], "routes": [], "runbooks": [],
                    "dead": [], "next": null, "default_runbook": "<b>x</b>",
                    "kinds": honeytrail_app::ops::alerting::channel_kinds()}),
            ),
            (
                "events.html",
                serde_json::json!({"title": "Events", "me": me, "csrf": "c", "id": 1, "next": "/incidents/1/events?cursor=e1.2",
                    "events": [{"event_time": "2026-11-28T09:00:00Z", "event_source": "s3.amazonaws.com", "event_name": "ListBuckets",
                        "aws_region": null, "source_ip": "198.51.100.7", "user_agent": "vic's <b>agent</b>", "error_code": null,
                        "detection_delay_seconds": 4, "source": "eventbridge"}]}),
            ),
        ] {
            let html = render(name, ctx);
            assert!(!html.contains("failed to render") && html.contains("vic"), "{name}: {html}");
            assert!(!html.contains("<b>"), "{name} escapes what it shows: {html}");
        }
        let alerting = render(
            "alerting.html",
            serde_json::json!({"title": "Alerting", "me": me, "csrf": "c",
            "is_admin": true, "can_respond": true, "channels": [], "routes": [], "runbooks": [], "dead": [], "next": null,
            "default_runbook": "", "kinds": honeytrail_app::ops::alerting::channel_kinds()}),
        );
        for kind in honeytrail_app::ops::alerting::channel_kinds() {
            assert!(
                alerting.contains(&format!("id=\"add-channel-{}\"", kind.name)),
                "{} offered: {alerting}",
                kind.name
            );
            for f in kind.fields {
                assert!(alerting.contains(&format!("name=\"{}\"", f.key)), "{}.{} offered", kind.name, f.key);
            }
        }
        let html = render("message.html", minijinja::context! {title => "t", message => "<script>x</script>"});
        assert!(html.contains("&lt;script&gt;x") && !html.contains("<script>"), "{html}");
    }
}
