//! The alert as prose: a title and a plain-text body, shared by the channels
//! that carry text (email, Jira) so they all say the same thing.

use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

fn joined(v: &Value) -> String {
    let items = strings(v);
    if items.is_empty() {
        "–".into()
    } else {
        items.join(", ")
    }
}

/// Whether the record is a clearly marked test alert.
pub fn is_test(record: &Value) -> bool {
    record["test"] == true
}

/// One line naming what happened, for a subject, a ticket summary or a header.
pub fn title(record: &Value) -> String {
    if is_test(record) {
        return "honeytrail test alert: no honey key was used".into();
    }
    let incident = &record["incident"];
    let key = s(&incident["access_key_id"]);
    let id = incident["id"].as_i64().unwrap_or(0);
    let report = incident["kind"] == "report";
    match record["alert"]["kind"].as_str().or(record["type"].as_str()) {
        Some("incident.opened") if report => {
            format!("Decoy key {key} was found and reported (incident #{id}, not a use)")
        }
        Some("incident.opened") => format!("Honey key {key} used (incident #{id})"),
        Some("incident.state") => format!("Incident #{id} ({key}) is now {}", s(&incident["state"])),
        Some("incident.answer") => format!("Incident #{id} ({key}): the placement owner answered"),
        _ => format!("Incident #{id} ({key}) updated: {} events", incident["event_count"]),
    }
}

/// The whole alert as plain text: placement, custody, activity, events,
/// state, link and runbook.
pub fn body(record: &Value) -> String {
    use std::fmt::Write;
    if is_test(record) {
        return "This is a test alert from honeytrail, sent to check this channel.\nNo honey key was used.\n".into();
    }
    let incident = &record["incident"];
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", s(&record["placement"]));
    if incident["token_retired"] == true {
        let _ = writeln!(out, "This key was retired before it was used.\n");
    }
    let _ = writeln!(
        out,
        "Incident #{} · state {} · severity {} · {} events · first call {} · last call {}",
        incident["id"],
        s(&incident["state"]),
        s(&incident["severity"]),
        incident["event_count"],
        s(&incident["first_seen"]),
        s(&incident["last_seen"])
    );
    if let Some(url) = incident["url"].as_str() {
        let _ = writeln!(out, "Open it: {url}");
    }
    let placements = strings(&record["placements"]);
    if placements.len() > 1 {
        let _ = writeln!(out, "\nAll placements of this key:");
        for p in placements {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let hops = strings(&record["may_have_leaked_at"]);
    let _ = writeln!(out, "\nMay have leaked at:");
    if hops.is_empty() {
        let _ = writeln!(out, "  (no chain of custody recorded)");
    }
    for h in hops {
        let _ = writeln!(out, "  - {h}");
    }
    let a = &record["activity"];
    let _ = writeln!(out, "\nWhat was called: {}", joined(&a["apis"]));
    let _ = writeln!(out, "From: {}", joined(&a["source_ips"]));
    let _ = writeln!(out, "Regions: {} · user agents: {}", joined(&a["regions"]), joined(&a["user_agents"]));
    let _ = writeln!(out, "Errors: {}", joined(&a["error_codes"]));
    let events = record["events"].as_array().cloned().unwrap_or_default();
    if !events.is_empty() {
        let _ =
            writeln!(out, "\nEvents (event time · API · region · source IP · user agent · error · detected after):");
        for e in events.iter().rev().take(20) {
            let _ = writeln!(
                out,
                "  {} · {}:{} · {} · {} · {} · {} · {} s",
                s(&e["event_time"]),
                s(&e["event_source"]).trim_end_matches(".amazonaws.com"),
                s(&e["event_name"]),
                s(&e["aws_region"]),
                s(&e["source_ip"]),
                s(&e["user_agent"]),
                e["error_code"].as_str().unwrap_or("ok"),
                e["detection_delay_seconds"]
            );
        }
        if events.len() > 20 {
            let _ = writeln!(out, "  … and {} earlier events", events.len() - 20);
        }
    }
    let said: Vec<String> = record["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["kind"] == "owner-answer" || h["kind"] == "note")
        .map(|h| format!("  {} · {}: {}", s(&h["at"]), s(&h["actor"]), s(&h["note"])))
        .collect();
    if !said.is_empty() {
        let _ = writeln!(out, "\nAnswers and notes:\n{}", said.join("\n"));
    }
    let _ = writeln!(out, "\nRunbook\n{}", s(&record["runbook"]));
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_carries_placement_custody_events_link_and_runbook() {
        let record = json!({
            "alert": {"kind": "incident.opened"},
            "incident": {"id": 4, "access_key_id": "AKIAX", "state": "open", "severity": "high", "event_count": 1,
                         "url": "https://ht.example/incidents/4"},
            "placement": "Key AKIAX was placed on web-1 in ~/.aws/credentials.",
            "may_have_leaked_at": ["backup bucket s3://b"],
            "activity": {"apis": ["sts:GetCallerIdentity"], "source_ips": ["198.51.100.7"]},
            "events": [{"event_time": "t", "event_source": "sts.amazonaws.com", "event_name": "GetCallerIdentity",
                        "detection_delay_seconds": 12}],
            "runbook": "1. Ask the owner."
        });
        assert_eq!(title(&record), "Honey key AKIAX used (incident #4)");
        let b = body(&record);
        for needle in [
            "Key AKIAX was placed on web-1",
            "backup bucket s3://b",
            "sts:GetCallerIdentity",
            "198.51.100.7",
            "https://ht.example/incidents/4",
            "12 s",
            "1. Ask the owner.",
        ] {
            assert!(b.contains(needle), "{needle} missing from\n{b}");
        }
        assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
