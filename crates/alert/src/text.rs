//! The alert as prose: a title and a plain-text body, shared by the channels
//! that carry text (email, Jira) so they all say the same thing.

use chrono::{DateTime, Utc};
use honeytrail_core::record::{Alert, AlertRecord};

/// A time as the record's JSON writes it: RFC 3339, UTC, `Z`.
pub fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// One value of the record on one line: control characters (CR and LF
/// included, which would fake a line of the alert) shown as escapes.
/// Every value an intruder may have written passes through here.
pub fn line(s: &str) -> std::borrow::Cow<'_, str> {
    honeytrail_core::encoding::printable(s)
}

/// Text of several lines (a runbook, a note): its lines kept, every other
/// control character shown as an escape.
pub fn lines(s: &str) -> String {
    s.split('\n').map(|l| line(l.strip_suffix('\r').unwrap_or(l)).into_owned()).collect::<Vec<_>>().join("\n")
}

/// The most values of one list an alert names; the rest are counted.
pub const LIST_MAX: usize = 20;

/// At most [`LIST_MAX`] of `items`, and how many were left out.
pub fn first<T>(items: &[T]) -> (&[T], usize) {
    let n = items.len().min(LIST_MAX);
    (&items[..n], items.len() - n)
}

/// At most [`LIST_MAX`] of `items`, and how many of `total` are left out.
fn joined(items: &[String], total: usize) -> String {
    if items.is_empty() {
        return "–".into();
    }
    let (shown, _) = first(items);
    let more = total.max(items.len()) - shown.len();
    let mut out = shown.iter().map(|i| line(i)).collect::<Vec<_>>().join(", ");
    if more > 0 {
        out.push_str(&format!(" … and {more} more"));
    }
    out
}

/// `text` cut to at most `max` bytes (at a character boundary), saying
/// what was left out and where the rest is: every channel keeps under its
/// vendor's documented limit instead of being refused.
pub fn fit(text: &str, max: usize, rest_at: Option<&str>) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let note = format!(
        "\n… [cut: {} more characters; the whole incident is at {}]",
        text.len(),
        rest_at.unwrap_or("the incident page")
    );
    let mut end = max.saturating_sub(note.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let left = text.len() - end;
    let note = note.replacen(&text.len().to_string(), &left.to_string(), 1);
    format!("{}{note}", &text[..end])
}

fn or_empty(v: &Option<String>) -> std::borrow::Cow<'_, str> {
    line(v.as_deref().unwrap_or(""))
}

/// One line naming what happened, for a subject, a ticket summary or a header.
pub fn title(alert: &Alert) -> String {
    match alert {
        Alert::Test(_) => "honeytrail test alert: no honey key was used".into(),
        Alert::Incident(record) => incident_title(record),
    }
}

/// What the incident is, as its opening alert says it: the same for every
/// later alert of it (what a SIEM finding is titled).
pub fn headline(record: &AlertRecord) -> String {
    let incident = &record.incident;
    let key = &incident.access_key_id;
    let id = incident.id;
    if let Some(fleet) = incident.kind.fleet_headline(key) {
        return format!("{fleet} (incident #{id})");
    }
    match incident.kind {
        honeytrail_core::incident::IncidentKind::Exposed => {
            format!("Honey key {key} was exposed publicly: AWS found it published (incident #{id})")
        }
        _ if incident.is_report() => format!("Decoy key {key} was found and reported (incident #{id}, not a use)"),
        _ => format!("Honey key {key} used (incident #{id})"),
    }
}

fn incident_title(record: &AlertRecord) -> String {
    let incident = &record.incident;
    let key = &incident.access_key_id;
    let id = incident.id;
    match record.alert_kind() {
        "incident.opened" => headline(record),
        "incident.state" => format!("Incident #{id} ({key}) is now {}", incident.state),
        "incident.answer" => format!("Incident #{id} ({key}): the placement owner answered"),
        "incident.action" => {
            format!("Incident #{id} ({key}): {}", record.last_action().unwrap_or("a response action ran"))
        }
        _ => format!("Incident #{id} ({key}) updated: {} events", incident.event_count),
    }
}

/// The whole alert as plain text: placement, custody, activity, events,
/// state, link and runbook.
pub fn body(alert: &Alert) -> String {
    match alert {
        Alert::Test(_) => {
            "This is a test alert from honeytrail, sent to check this channel.\nNo honey key was used.\n".into()
        }
        Alert::Incident(record) => incident_body(record),
    }
}

fn incident_body(record: &AlertRecord) -> String {
    use std::fmt::Write;
    let incident = &record.incident;
    let mut out = String::new();
    writeln!(out, "{}\n", line(&record.placement)).expect("writing to a String cannot fail");
    for r in read_lines(record).into_iter().chain(context_lines(record)) {
        writeln!(out, "{r}").expect("writing to a String cannot fail");
    }
    if incident.token_retired {
        writeln!(out, "This key was retired before it was used.\n").expect("writing to a String cannot fail");
    }
    writeln!(
        out,
        "Incident #{} · state {} · severity {} · {} events · first call {} · last call {}",
        incident.id,
        incident.state,
        incident.severity,
        incident.event_count,
        when(incident.first_seen),
        when(incident.last_seen)
    )
    .expect("writing to a String cannot fail");
    if let Some(url) = &incident.url {
        writeln!(out, "Open it: {url}").expect("writing to a String cannot fail");
    }
    if record.placements.len() > 1 {
        writeln!(out, "\nAll placements of this key:").expect("writing to a String cannot fail");
        let (shown, more) = first(&record.placements);
        for p in shown {
            writeln!(out, "  - {}", line(p)).expect("writing to a String cannot fail");
        }
        if more > 0 {
            writeln!(out, "  … and {more} more placements").expect("writing to a String cannot fail");
        }
    }
    writeln!(out, "\nMay have leaked at:").expect("writing to a String cannot fail");
    if record.may_have_leaked_at.is_empty() {
        writeln!(out, "  (no chain of custody recorded)").expect("writing to a String cannot fail");
    }
    let (shown, more) = first(&record.may_have_leaked_at);
    for h in shown {
        writeln!(out, "  - {}", line(h)).expect("writing to a String cannot fail");
    }
    if more > 0 {
        writeln!(out, "  … and {more} more hops").expect("writing to a String cannot fail");
    }
    let a = &record.activity;
    let n = &a.distinct;
    writeln!(out, "\nWhat was called: {}", joined(&a.apis, n.apis)).expect("writing to a String cannot fail");
    writeln!(out, "From: {}", joined(&a.source_ips, n.source_ips)).expect("writing to a String cannot fail");
    writeln!(
        out,
        "Regions: {} · user agents: {}",
        joined(&a.regions, n.regions),
        joined(&a.user_agents, n.user_agents)
    )
    .expect("writing to a String cannot fail");
    writeln!(out, "Errors: {}", joined(&a.error_codes, n.error_codes)).expect("writing to a String cannot fail");
    let events = &record.events;
    if !events.is_empty() {
        writeln!(out, "\nEvents (event time · API · region · source IP · user agent · error · detected after):")
            .expect("writing to a String cannot fail");
        for e in events.iter().rev().take(20) {
            writeln!(
                out,
                "  {} · {}:{} · {} · {} · {} · {} · {}",
                when(e.event_time),
                line(e.event_source.trim_end_matches(".amazonaws.com")),
                line(&e.event_name),
                or_empty(&e.aws_region),
                or_empty(&e.source_ip),
                or_empty(&e.user_agent),
                line(e.error_code.as_deref().unwrap_or("ok")),
                e.detection_delay_seconds.map_or_else(|| "?".to_string(), honeytrail_core::describe::duration_words)
            )
            .expect("writing to a String cannot fail");
        }
        let total = (record.incident.event_count as usize).max(events.len());
        if total > 20 {
            writeln!(out, "  … and {} earlier events", total - 20).expect("writing to a String cannot fail");
        }
    }
    let said: Vec<String> = record
        .history
        .iter()
        .filter(|h| h.kind == "owner-answer" || h.kind == "note")
        .map(|h| format!("  {} · {}: {}", when(h.at), line(&h.actor), or_empty(&h.note)))
        .collect();
    if !said.is_empty() {
        writeln!(out, "\nAnswers and notes:\n{}", said.join("\n")).expect("writing to a String cannot fail");
    }
    writeln!(out, "\nRunbook\n{}", lines(&record.runbook)).expect("writing to a String cannot fail");
    out
}

/// What the record says of reads of the bait on its host, one line each
/// (none when there were none): the latest read before the first call, or
/// for other incidents the reads themselves (at most five).
pub fn read_lines(record: &AlertRecord) -> Vec<String> {
    if let Some(r) = &record.read_before {
        return vec![format!("Bait read on the host: {}\n", line(r))];
    }
    if record.reads.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["Reads of the bait on its host:".to_string()];
    let (shown, more) = first(&record.reads);
    for r in shown.iter().take(5) {
        out.push(format!("  - {}", line(&r.sentence)));
    }
    let more = more + shown.len().saturating_sub(5);
    if more > 0 {
        out.push(format!("  … and {more} more"));
    }
    out.push(String::new());
    out
}

/// What enrichment says of the calls (own network, AWS, Tor, attacker
/// tools), one line each, none when nothing matched.
pub fn context_lines(record: &AlertRecord) -> Vec<String> {
    let Some(c) = record.context.as_ref().filter(|c| !c.is_empty()) else {
        return Vec::new();
    };
    let mut out = vec!["Context:".to_string()];
    out.extend(c.summary.iter().take(10).map(|s| format!("  - {}", line(s))));
    out.push(String::new());
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
    use honeytrail_core::record::{AlertRef, EventInfo};

    #[test]
    fn the_body_carries_placement_custody_events_link_and_runbook() {
        let mut record = AlertRecord::skeleton(4, "AKIAX");
        record.alert = Some(AlertRef { id: 1, kind: "incident.opened".into() });
        record.incident.event_count = 1;
        record.incident.url = Some("https://ht.example/incidents/4".into());
        record.placement = "Key AKIAX was placed on web-1 in ~/.aws/credentials.".into();
        record.may_have_leaked_at = vec!["backup bucket s3://b".into()];
        record.activity.apis = vec!["sts:GetCallerIdentity".into()];
        record.activity.source_ips = vec!["198.51.100.7".into()];
        record.events = vec![EventInfo {
            event_source: "sts.amazonaws.com".into(),
            event_name: "GetCallerIdentity".into(),
            detection_delay_seconds: Some(12),
            ..EventInfo::skeleton("e-1")
        }];
        record.runbook = "1. Ask the owner.".into();
        let alert = Alert::Incident(Box::new(record));
        assert_eq!(title(&alert), "Honey key AKIAX used (incident #4)");
        let b = body(&alert);
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
