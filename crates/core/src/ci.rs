//! CI canaries: one key per CI run (a GitHub Actions job, a GitLab CI job),
//! written where the run's tools and anyone who compromises the run would
//! find AWS credentials, and tagged with the run.
//!
//! The run opens an *expected-activity window* when it takes its key and
//! closes it at its end. A use of the key inside the window that the window
//! expects is stored on the run without an alert (the job's own tools picked
//! the credentials up); any other use is an incident whose placement names
//! the run. The window is bounded even when the run never closes it.
//!
//! Everything in a [`CiRunRequest`] is written by whoever holds the
//! enrolment secret, so every field is bounded before it is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fleet::fact;
use crate::{Invalid, Labels, Spot};

/// The longest window a run may ask for, in minutes (GitHub's job limit is
/// 6 hours; a self-hosted runner's is 5 days, but a window that long is a
/// blind spot).
pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;

/// The CI system a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
    Other,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "github" => Some(Provider::Github),
            "gitlab" => Some(Provider::Gitlab),
            "other" => Some(Provider::Other),
            _ => None,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Provider::Github => "GitHub Actions",
            Provider::Gitlab => "GitLab CI",
            Provider::Other => "CI",
        }
    }
}

/// Which uses inside the window are the run's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Uses from the address the run opened its window from: the runner's
    /// own calls. A use from anywhere else, even inside the window, is an
    /// incident (the credentials left the runner).
    #[default]
    Runner,
    /// Every use inside the window, whatever its source (runners behind a
    /// NAT the server does not see, or calls AWS does not log with an
    /// address). Weaker: a theft used at once goes unalerted.
    Any,
    /// No use is expected: every use is an incident.
    None,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Runner => "runner",
            Expect::Any => "any",
            Expect::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Expect> {
        match s {
            "runner" => Some(Expect::Runner),
            "any" => Some(Expect::Any),
            "none" => Some(Expect::None),
            _ => None,
        }
    }
}

/// What a CI run sends for its key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CiRunRequest {
    pub provider: Option<Provider>,
    /// `owner/name` (GitHub) or the project path (GitLab).
    pub repository: String,
    pub workflow: Option<String>,
    pub job: Option<String>,
    pub commit: Option<String>,
    pub run_id: String,
    pub run_attempt: Option<String>,
    /// A link to the run, shown in the incident.
    pub url: Option<String>,
    pub expect: Option<Expect>,
    /// How long the window stays open if the run never closes it; at most
    /// the server's `ci.max_window_minutes`.
    pub window_minutes: Option<u32>,
}

impl CiRunRequest {
    /// Bounds every field: a repository and a run ID are required, nothing
    /// is long or holds control characters, a URL is https.
    pub fn check(&self) -> Result<(), Invalid> {
        for (name, value) in [("repository", &self.repository), ("run_id", &self.run_id)] {
            if value.trim().is_empty() {
                return Err(Invalid(format!("{name}: the run must say it (e.g. $GITHUB_REPOSITORY, $GITHUB_RUN_ID)")));
            }
            fact(name, value)?;
        }
        for (name, value) in [
            ("workflow", &self.workflow),
            ("job", &self.job),
            ("commit", &self.commit),
            ("run_attempt", &self.run_attempt),
            ("url", &self.url),
        ] {
            if let Some(v) = value {
                fact(name, v)?;
            }
        }
        if let Some(url) = &self.url {
            if !url.starts_with("https://")
                || url.chars().any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
            {
                return Err(Invalid(
                    "url: an https:// link to the run, without spaces, quotes or angle brackets".into(),
                ));
            }
        }
        if self.window_minutes == Some(0) {
            return Err(Invalid("window_minutes: at least 1 (or leave it out for the server's default)".into()));
        }
        Ok(())
    }

    pub fn provider(&self) -> Provider {
        self.provider.unwrap_or(Provider::Other)
    }

    /// What the key is labelled with: the run's tags, beside the enrolment
    /// secret's own labels (the run's win where both name one).
    pub fn labels(&self, base: &Labels) -> Labels {
        let mut labels = base.clone();
        labels.insert("ci.provider".into(), self.provider().as_str().into());
        labels.insert("ci.repository".into(), self.repository.clone());
        labels.insert("ci.run".into(), self.run_id.clone());
        for (name, value) in [
            ("ci.workflow", &self.workflow),
            ("ci.job", &self.job),
            ("ci.commit", &self.commit),
            ("ci.attempt", &self.run_attempt),
        ] {
            if let Some(v) = value {
                labels.insert(name.into(), v.clone());
            }
        }
        labels
    }

    /// The run in one line: "GitHub Actions run 4242 (attempt 2) of
    /// acme/shop, workflow deploy, job build, commit 3f2a9c1".
    pub fn describe(&self) -> String {
        let mut s = format!("{} run {}", self.provider().title(), self.run_id);
        if let Some(a) = &self.run_attempt {
            s.push_str(&format!(" (attempt {a})"));
        }
        s.push_str(&format!(" of {}", self.repository));
        for (name, value) in [("workflow", &self.workflow), ("job", &self.job)] {
            if let Some(v) = value {
                s.push_str(&format!(", {name} {v}"));
            }
        }
        if let Some(c) = &self.commit {
            s.push_str(&format!(", commit {}", c.chars().take(12).collect::<String>()));
        }
        s
    }

    /// Where the key was placed, as a placement: the runner is the host (as
    /// far as the server can tell, its address), the run's credentials file
    /// and environment the path.
    pub fn spot(&self, base: &Labels, source_address: &str, enrolment_id: i64) -> Spot {
        Spot {
            host: format!("{} runner at {source_address}", self.provider().title()),
            path: "~/.aws/credentials and AWS_* environment of the run".into(),
            owner: None,
            asset: Some(self.describe()),
            serial: None,
            format: Some("ci-run".into()),
            placed_by: Some(format!("CI run by enrolment #{enrolment_id}")),
            notes: self.url.clone(),
            labels: self.labels(base),
            instance_id: None,
            iam_user: None,
            aws_account: None,
        }
    }
}

/// A CI run that took a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiRun {
    pub id: i64,
    pub token_id: i64,
    pub access_key_id: String,
    pub enrolment_id: i64,
    pub provider: Provider,
    pub repository: String,
    pub workflow: Option<String>,
    pub job: Option<String>,
    pub commit: Option<String>,
    pub run_id: String,
    pub run_attempt: Option<String>,
    pub url: Option<String>,
    /// The address the run opened its window from.
    pub source_address: String,
    pub expect: Expect,
    pub opened_at: DateTime<Utc>,
    /// When the window ends if the run does not close it first.
    pub window_ends_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Uses inside the window that it expected (stored, not alerted).
    pub expected_uses: i64,
}

impl CiRun {
    /// When the window ends (ended): at the close, or at its bound.
    pub fn window_end(&self) -> DateTime<Utc> {
        self.closed_at.unwrap_or(self.window_ends_at).min(self.window_ends_at)
    }

    /// `open`, `closed` (by the run) or `lapsed` (never closed; its bound passed).
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        match self.closed_at {
            Some(_) => "closed",
            None if self.window_ends_at <= now => "lapsed",
            None => "open",
        }
    }

    pub fn request(&self) -> CiRunRequest {
        CiRunRequest {
            provider: Some(self.provider),
            repository: self.repository.clone(),
            workflow: self.workflow.clone(),
            job: self.job.clone(),
            commit: self.commit.clone(),
            run_id: self.run_id.clone(),
            run_attempt: self.run_attempt.clone(),
            url: self.url.clone(),
            expect: Some(self.expect),
            window_minutes: None,
        }
    }
}

/// What the server answers a run: its key (shown once) and the token that
/// closes its window.
#[derive(Clone, Serialize, Deserialize)]
pub struct CiRunOpened {
    pub run: CiRun,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// Closes this run's window and nothing else (`POST /api/v1/ci/runs/{id}/close`).
    pub close_token: String,
}

impl std::fmt::Debug for CiRunOpened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiRunOpened")
            .field("run", &self.run.id)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One use of a run's key that its window expected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectedUse {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> CiRunRequest {
        CiRunRequest {
            provider: Some(Provider::Github),
            repository: "acme/shop".into(),
            workflow: Some("deploy".into()),
            job: Some("build".into()),
            commit: Some("3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39".into()),
            run_id: "4242".into(),
            run_attempt: Some("2".into()),
            url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_run_is_described_and_labelled_by_its_tags() {
        let r = github();
        r.check().unwrap();
        assert_eq!(
            r.describe(),
            "GitHub Actions run 4242 (attempt 2) of acme/shop, workflow deploy, job build, commit 3f2a9c1d8e7b"
        );
        let base: Labels = [("team".to_string(), "payments".to_string()), ("ci.run".into(), "forged".into())].into();
        let labels = r.labels(&base);
        assert_eq!(labels["team"], "payments");
        assert_eq!(labels["ci.run"], "4242", "the run's own tag wins");
        assert_eq!(labels["ci.repository"], "acme/shop");
        assert_eq!(labels["ci.attempt"], "2");
        let spot = r.spot(&base, "198.51.100.4", 7);
        assert_eq!(spot.host, "GitHub Actions runner at 198.51.100.4");
        assert_eq!(spot.placed_by.as_deref(), Some("CI run by enrolment #7"));
    }

    #[test]
    fn hostile_or_missing_fields_are_refused_by_name() {
        let mut r = github();
        r.repository = " ".into();
        assert!(r.check().unwrap_err().0.starts_with("repository:"));
        let mut r = github();
        r.job = Some("build\u{1b}[31m".into());
        assert!(r.check().unwrap_err().0.starts_with("job:"));
        let mut r = github();
        r.workflow = Some("w".repeat(10_000));
        assert!(r.check().unwrap_err().0.starts_with("workflow:"));
        let mut r = github();
        r.url = Some("javascript:alert(1)".into());
        assert!(r.check().unwrap_err().0.starts_with("url:"));
        let mut r = github();
        r.url = Some("https://x/\"><script>".into());
        assert!(r.check().unwrap_err().0.starts_with("url:"));
        let mut r = github();
        r.window_minutes = Some(0);
        assert!(r.check().unwrap_err().0.starts_with("window_minutes:"));
        let unknown: Result<CiRunRequest, _> = serde_json::from_str(r#"{"repository":"a","run_id":"1","admin":true}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn a_window_ends_at_its_close_or_its_bound() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut run = CiRun {
            id: 1,
            token_id: 1,
            access_key_id: "AKIA".into(),
            enrolment_id: 1,
            provider: Provider::Gitlab,
            repository: "g/p".into(),
            workflow: None,
            job: None,
            commit: None,
            run_id: "9".into(),
            run_attempt: None,
            url: None,
            source_address: "192.0.2.1".into(),
            expect: Expect::Runner,
            opened_at: at("2026-12-07T10:00:00Z"),
            window_ends_at: at("2026-12-07T16:00:00Z"),
            closed_at: None,
            expected_uses: 0,
        };
        assert_eq!(run.state(at("2026-12-07T11:00:00Z")), "open");
        assert_eq!(run.state(at("2026-12-07T16:00:00Z")), "lapsed");
        assert_eq!(run.window_end(), at("2026-12-07T16:00:00Z"));
        run.closed_at = Some(at("2026-12-07T10:20:00Z"));
        assert_eq!(run.state(at("2026-12-07T11:00:00Z")), "closed");
        assert_eq!(run.window_end(), at("2026-12-07T10:20:00Z"));
    }
}
