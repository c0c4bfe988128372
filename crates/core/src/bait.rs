//! Bait files: the text a honey key is planted in.
//!
//! Every format renders what a real team would write by hand, so nothing about
//! the file hints at a decoy. Formats that users keep several entries in
//! (`~/.aws/credentials`, `~/.aws/config`, `.env`, shell profiles) can be merged
//! into an existing file without touching anything else in it.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Every bait format honeytrail can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    AwsCredentials,
    AwsConfig,
    Dotenv,
    Shell,
    Python,
    Javascript,
    Go,
    Java,
    Tfvars,
    K8sSecret,
    DockerCompose,
    GithubActions,
    /// The AWS CLI's cache of assumed-role credentials
    /// (`~/.aws/cli/cache/<sha1>.json`): session credentials only.
    AwsCliCache,
}

impl Format {
    pub const ALL: [Format; 13] = [
        Format::AwsCredentials,
        Format::AwsConfig,
        Format::Dotenv,
        Format::Shell,
        Format::Python,
        Format::Javascript,
        Format::Go,
        Format::Java,
        Format::Tfvars,
        Format::K8sSecret,
        Format::DockerCompose,
        Format::GithubActions,
        Format::AwsCliCache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::AwsCredentials => "aws-credentials",
            Format::AwsConfig => "aws-config",
            Format::Dotenv => "dotenv",
            Format::Shell => "shell",
            Format::Python => "python",
            Format::Javascript => "javascript",
            Format::Go => "go",
            Format::Java => "java",
            Format::Tfvars => "tfvars",
            Format::K8sSecret => "k8s-secret",
            Format::DockerCompose => "docker-compose",
            Format::GithubActions => "github-actions",
            Format::AwsCliCache => "aws-cli-cache",
        }
    }

    /// Where such a file usually lives, for help text and the default path.
    pub fn typical_path(self) -> &'static str {
        match self {
            Format::AwsCredentials => "~/.aws/credentials",
            Format::AwsConfig => "~/.aws/config",
            Format::Dotenv => ".env",
            Format::Shell => "~/.bashrc",
            Format::Python => "settings.py",
            Format::Javascript => "config/aws.js",
            Format::Go => "internal/config/aws.go",
            Format::Java => "src/main/java/com/example/config/AwsConfig.java",
            Format::Tfvars => "terraform.tfvars",
            Format::K8sSecret => "aws-credentials-secret.yaml",
            Format::DockerCompose => "docker-compose.yml",
            Format::GithubActions => ".github/workflows/deploy.yml",
            Format::AwsCliCache => "~/.aws/cli/cache/5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6.json",
        }
    }

    /// True for formats whose files hold many entries, so rendering merges
    /// into an existing file instead of replacing it.
    pub fn merges(self) -> bool {
        matches!(self, Format::AwsCredentials | Format::AwsConfig | Format::Dotenv | Format::Shell)
    }

    /// True for formats that only ever hold session credentials (a key
    /// without a session token there would give the bait away).
    pub fn session_only(self) -> bool {
        self == Format::AwsCliCache
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = crate::Invalid;
    fn from_str(s: &str) -> Result<Format, crate::Invalid> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match wanted.as_str() {
            "credentials" => "aws-credentials",
            "config" => "aws-config",
            "env" => "dotenv",
            "bash" | "sh" | "exports" => "shell",
            "js" | "node" => "javascript",
            "golang" => "go",
            "terraform" => "tfvars",
            "kubernetes" | "k8s" => "k8s-secret",
            "compose" => "docker-compose",
            "github" | "gha" => "github-actions",
            "cli-cache" | "aws-cache" => "aws-cli-cache",
            other => other,
        };
        Format::ALL.into_iter().find(|f| f.name() == alias).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            crate::Invalid(format!("unknown bait format {s:?}; choose one of: {}", names.join(", ")))
        })
    }
}

/// What goes into a bait file.
#[derive(Debug, Clone)]
pub struct BaitInput<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Profile / environment name the file talks about: `prod`, `backup`, …
    pub profile: &'a str,
    pub region: &'a str,
    /// Session credentials (`ASIA…`): the session token, and when they
    /// expire (RFC 3339). `None` for a long-lived key.
    pub session: Option<SessionPart<'a>>,
}

/// What session credentials carry beside the key ID and secret.
#[derive(Debug, Clone, Copy)]
pub struct SessionPart<'a> {
    pub token: &'a str,
    /// RFC 3339, e.g. `2026-12-07T23:04:11Z`.
    pub expiration: &'a str,
    /// The role session, when known: what an `AssumeRole` answer names
    /// beside the credentials (the CLI's cache keeps it).
    pub role: Option<RoleSession<'a>>,
}

/// The role session an `AssumeRole` answer names.
#[derive(Debug, Clone, Copy)]
pub struct RoleSession<'a> {
    /// `AROA…:session-name`.
    pub id: &'a str,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME`.
    pub arn: &'a str,
    /// When the session was started, RFC 3339.
    pub issued: &'a str,
}

/// The variables the shell-like formats set, the honey entry's own.
const VARIABLES: [&str; 4] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"];

/// Renders a complete file (or, for merging formats, the entry to add).
pub fn render(format: Format, input: &BaitInput<'_>) -> String {
    let BaitInput { access_key_id: id, secret_access_key: secret, profile, region, session } = *input;
    let token = session.map(|s| s.token);
    // A line (or lines) for the session token, in each format's own way;
    // nothing for a key.
    let line = |f: &dyn Fn(&str) -> String| token.map(f).unwrap_or_default();
    match format {
        Format::AwsCredentials => format!(
            "[{profile}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n{}",
            line(&|t| format!("aws_session_token = {t}\n"))
        ),
        Format::AwsConfig => format!(
            "[{}]\nregion = {region}\noutput = json\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n{}",
            config_section(profile),
            line(&|t| format!("aws_session_token = {t}\n"))
        ),
        Format::Dotenv => format!(
            "AWS_ACCESS_KEY_ID={id}\nAWS_SECRET_ACCESS_KEY={secret}\n{}AWS_DEFAULT_REGION={region}\n",
            line(&|t| format!("AWS_SESSION_TOKEN={t}\n"))
        ),
        Format::Shell => format!(
            "# AWS ({profile})\nexport AWS_ACCESS_KEY_ID={id}\nexport AWS_SECRET_ACCESS_KEY={secret}\n{}export AWS_DEFAULT_REGION={region}\n",
            line(&|t| format!("export AWS_SESSION_TOKEN={t}\n"))
        ),
        Format::Python => format!(
            "import boto3\n\n\
             # {profile} account, used by the nightly export job\n\
             AWS_ACCESS_KEY_ID = \"{id}\"\n\
             AWS_SECRET_ACCESS_KEY = \"{secret}\"\n\
             {}AWS_REGION = \"{region}\"\n\n\
             session = boto3.session.Session(\n    \
                 aws_access_key_id=AWS_ACCESS_KEY_ID,\n    \
                 aws_secret_access_key=AWS_SECRET_ACCESS_KEY,\n    \
                 {}region_name=AWS_REGION,\n\
             )\n",
            line(&|t| format!("AWS_SESSION_TOKEN = \"{t}\"\n")),
            line(&|_| "aws_session_token=AWS_SESSION_TOKEN,\n    ".to_string())
        ),
        Format::Javascript => format!(
            "// AWS access for the {profile} deploy scripts\n\
             const AWS_ACCESS_KEY_ID = \"{id}\";\n\
             const AWS_SECRET_ACCESS_KEY = \"{secret}\";\n\
             {}\n\
             module.exports = {{\n  \
               region: \"{region}\",\n  \
               credentials: {{\n    \
                 accessKeyId: AWS_ACCESS_KEY_ID,\n    \
                 secretAccessKey: AWS_SECRET_ACCESS_KEY,\n  \
               {}}},\n\
             }};\n",
            line(&|t| format!("const AWS_SESSION_TOKEN = \"{t}\";\n")),
            line(&|_| "  sessionToken: AWS_SESSION_TOKEN,\n  ".to_string())
        ),
        Format::Go => format!(
            "package config\n\n\
             // AWS access for the {profile} environment.\n\
             const (\n\
             \tAWSAccessKeyID     = \"{id}\"\n\
             \tAWSSecretAccessKey = \"{secret}\"\n\
             {}\tAWSRegion          = \"{region}\"\n\
             )\n",
            line(&|t| format!("\tAWSSessionToken    = \"{t}\"\n"))
        ),
        Format::Java => format!(
            "package com.example.config;\n\n\
             /** AWS access for the {profile} environment. */\n\
             public final class AwsConfig {{\n    \
                 public static final String AWS_ACCESS_KEY_ID = \"{id}\";\n    \
                 public static final String AWS_SECRET_ACCESS_KEY = \"{secret}\";\n    \
                 {}public static final String AWS_REGION = \"{region}\";\n\n    \
                 private AwsConfig() {{}}\n\
             }}\n",
            line(&|t| format!("public static final String AWS_SESSION_TOKEN = \"{t}\";\n    "))
        ),
        Format::Tfvars => format!(
            "# {profile}\naws_region     = \"{region}\"\naws_access_key = \"{id}\"\naws_secret_key = \"{secret}\"\n{}",
            line(&|t| format!("aws_token      = \"{t}\"\n"))
        ),
        Format::K8sSecret => format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {profile}-aws-credentials\n  namespace: default\ntype: Opaque\ndata:\n  AWS_ACCESS_KEY_ID: {}\n  AWS_SECRET_ACCESS_KEY: {}\n{}  AWS_DEFAULT_REGION: {}\n",
            B64.encode(id),
            B64.encode(secret),
            line(&|t| format!("  AWS_SESSION_TOKEN: {}\n", B64.encode(t))),
            B64.encode(region)
        ),
        Format::DockerCompose => format!(
            "services:\n  worker:\n    image: {profile}-worker:latest\n    restart: unless-stopped\n    environment:\n      AWS_ACCESS_KEY_ID: \"{id}\"\n      AWS_SECRET_ACCESS_KEY: \"{secret}\"\n{}      AWS_DEFAULT_REGION: \"{region}\"\n",
            line(&|t| format!("      AWS_SESSION_TOKEN: \"{t}\"\n"))
        ),
        Format::GithubActions => format!(
            "name: deploy-{profile}\n\non:\n  push:\n    branches: [main]\n\nenv:\n  AWS_ACCESS_KEY_ID: \"{id}\"\n  AWS_SECRET_ACCESS_KEY: \"{secret}\"\n{}  AWS_DEFAULT_REGION: \"{region}\"\n\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Sync site to S3\n        run: aws s3 sync ./dist s3://{profile}-site-assets --delete\n",
            line(&|t| format!("  AWS_SESSION_TOKEN: \"{t}\"\n"))
        ),
        Format::AwsCliCache => cli_cache(id, secret, session),
    }
}

/// The AWS CLI's cache of an assumed role's credentials, as botocore's
/// `JSONFileCache` writes it: Python's `json.dumps` of the `AssumeRole`
/// answer (one line, `", "` and `": "` between items, no newline at the
/// end), the answer's own key order, and the expiry as botocore formats a
/// date (`%Y-%m-%dT%H:%M:%S%Z`, so `…UTC`).
fn cli_cache(id: &str, secret: &str, session: Option<SessionPart<'_>>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let botocore_time = |t: &str| match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%SUTC").to_string(),
        Err(_) => t.to_string(),
    };
    let mut out = format!("{{\"Credentials\": {{\"AccessKeyId\": {}, \"SecretAccessKey\": {}", q(id), q(secret));
    let Some(s) = session else {
        out.push_str("}}");
        return out;
    };
    out.push_str(&format!(", \"SessionToken\": {}, \"Expiration\": {}}}", q(s.token), q(&botocore_time(s.expiration))));
    if let Some(role) = s.role {
        // The request ID is made from the session, so every cache file has
        // its own and the same session always renders the same.
        use sha2::Digest;
        let h = sha2::Sha256::digest(s.token.as_bytes());
        let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let request = format!("{}-{}-4{}-{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[16..20], &hex[20..32]);
        let date = chrono::DateTime::parse_from_rfc3339(role.issued)
            .map(|t| t.with_timezone(&chrono::Utc).format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            .unwrap_or_default();
        // The XML answer's length: its fixed text and the values in it.
        let length = 652
            + id.len()
            + secret.len()
            + s.token.len()
            + s.expiration.len()
            + role.id.len()
            + role.arn.len()
            + request.len();
        out.push_str(&format!(
            ", \"AssumedRoleUser\": {{\"AssumedRoleId\": {}, \"Arn\": {}}}, \"ResponseMetadata\": {{\"RequestId\": {}, \
             \"HTTPStatusCode\": 200, \"HTTPHeaders\": {{\"x-amzn-requestid\": {}, \"content-type\": \"text/xml\", \
             \"content-length\": \"{length}\", \"date\": {}}}, \"RetryAttempts\": 0}}",
            q(role.id),
            q(role.arn),
            q(&request),
            q(&request),
            q(&date)
        ));
    }
    out.push('}');
    out
}

/// `~/.aws/config` names every profile but the default `profile NAME`.
fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    }
}

/// Why a bait entry could not be merged into an existing file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error(
        "the file already has a profile [{0}]; choose another profile, or replace that profile (a backup is kept)"
    )]
    ProfileExists(String),
    #[error("the file already sets {0}; replace those lines (a backup is kept), or render into another file")]
    VariablesExist(String),
    #[error(
        "the file already exists and {0} files are not merged; replace it (a backup is kept), or choose another path"
    )]
    FileExists(Format),
}

/// The result of merging an entry into a file's existing text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub content: String,
    /// True when an existing entry of the same name was replaced.
    pub replaced: bool,
}

/// Merges a rendered entry into `existing` file text.
///
/// Nothing outside the entry's own profile (or variables) is changed; an
/// entry of the same name is replaced only when `force` is set.
pub fn merge(format: Format, existing: &str, input: &BaitInput<'_>, force: bool) -> Result<Merged, MergeError> {
    let entry = render(format, input);
    let (kept, replaced) = match format {
        Format::AwsCredentials | Format::AwsConfig => {
            let header = match format {
                Format::AwsCredentials => input.profile.to_string(),
                _ => config_section(input.profile),
            };
            remove_ini_section(existing, &header, force)?
        }
        Format::Dotenv | Format::Shell => remove_assignments(existing, &VARIABLES, force)?,
        other => {
            if !existing.is_empty() && !force {
                return Err(MergeError::FileExists(other));
            }
            return Ok(Merged { content: entry, replaced: !existing.is_empty() });
        }
    };
    let mut content = kept;
    if !content.is_empty() {
        if !content.ends_with('\n') {
            content.push('\n');
        }
        if !content.ends_with("\n\n") {
            content.push('\n');
        }
    }
    content.push_str(&entry);
    Ok(Merged { content, replaced })
}

/// Section name of an INI header line, e.g. `[profile prod]` → `profile prod`.
fn ini_header(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    // The AWS CLI tolerates spaces inside the brackets and between words.
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn remove_ini_section(text: &str, header: &str, force: bool) -> Result<(String, bool), MergeError> {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    let mut found = false;
    for line in text.split_inclusive('\n') {
        if let Some(name) = ini_header(line) {
            skipping = name == header;
            if skipping {
                if !force {
                    return Err(MergeError::ProfileExists(header.trim_start_matches("profile ").to_string()));
                }
                found = true;
            }
        }
        if !skipping {
            out.push_str(line);
        }
    }
    Ok((out, found))
}

fn assigned_name(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
    let (name, _) = t.split_once('=')?;
    Some(name.trim())
}

fn remove_assignments(text: &str, names: &[&str], force: bool) -> Result<(String, bool), MergeError> {
    let present: Vec<&str> =
        names.iter().copied().filter(|n| text.lines().any(|l| assigned_name(l) == Some(n))).collect();
    // AWS_DEFAULT_REGION alone is common and harmless; only the key pair conflicts.
    let conflicting = present.iter().any(|n| *n != "AWS_DEFAULT_REGION");
    if !conflicting {
        let kept = text.split_inclusive('\n').filter(|l| assigned_name(l) != Some("AWS_DEFAULT_REGION")).collect();
        return Ok((kept, false));
    }
    if !force {
        return Err(MergeError::VariablesExist(present.join(", ")));
    }
    let kept = text.split_inclusive('\n').filter(|l| !assigned_name(l).is_some_and(|n| names.contains(&n))).collect();
    Ok((kept, true))
}

/// Where the honey entry for `profile` sits in a file's text: the byte
/// range of its INI section (header to the next header), of its contiguous
/// key assignments (with the comment line `shell` bait starts with), or the
/// whole file for formats that are never merged. `None`: there is none.
pub fn locate(format: Format, text: &str, profile: &str) -> Option<std::ops::Range<usize>> {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |at, line| {
            let start = *at;
            *at += line.len();
            Some((start, line))
        })
        .collect();
    let end_of = |i: usize| lines[i].0 + lines[i].1.len();
    match format {
        Format::AwsCredentials | Format::AwsConfig => {
            let header = match format {
                Format::AwsCredentials => profile.to_string(),
                _ => config_section(profile),
            };
            let first = lines.iter().position(|(_, l)| ini_header(l).as_deref() == Some(header.as_str()))?;
            let last = (first + 1..lines.len()).find(|i| ini_header(lines[*i].1).is_some()).unwrap_or(lines.len());
            Some(lines[first].0..if last == lines.len() { text.len() } else { lines[last].0 })
        }
        Format::Dotenv | Format::Shell => {
            let ours = |i: usize| assigned_name(lines[i].1).is_some_and(|n| VARIABLES.contains(&n));
            let key = lines.iter().position(|(_, l)| assigned_name(l) == Some("AWS_ACCESS_KEY_ID"))?;
            let mut first = key;
            while first > 0 && ours(first - 1) {
                first -= 1;
            }
            if format == Format::Shell && first > 0 && lines[first - 1].1.starts_with("# AWS (") {
                first -= 1;
            }
            let mut last = key;
            while last + 1 < lines.len() && ours(last + 1) {
                last += 1;
            }
            Some(lines[first].0..end_of(last))
        }
        _ => (!text.trim().is_empty()).then_some(0..text.len()),
    }
}

/// A digest of the honey entry for `profile` in `text` (its lines, trimmed,
/// blank ones dropped), to tell later whether it is still there unchanged
/// without sending the secret anywhere: `sha256:<hex>`, `None` when the file
/// holds no such entry. The same for a rendered entry and for that entry
/// merged into a file.
pub fn entry_digest(format: Format, text: &str, profile: &str) -> Option<String> {
    use sha2::Digest;
    let range = locate(format, text, profile)?;
    let mut hash = sha2::Sha256::new();
    for line in text[range].lines().map(str::trim).filter(|l| !l.is_empty()) {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("sha256:{hex}"))
}

/// The file without the entry for `profile`, every other byte unchanged
/// except the blank line [`merge`] put before it; `None` when there is no
/// entry.
pub fn unmerge(format: Format, text: &str, profile: &str) -> Option<String> {
    let range = locate(format, text, profile)?;
    let mut before = &text[..range.start];
    let after = &text[range.end..];
    if after.is_empty() && before.ends_with("\n\n") {
        before = &before[..before.len() - 1];
    }
    Some(format!("{before}{after}"))
}

/// The file with the entry for `profile` replaced in place by `entry`
/// (a rotation): everything before and after it unchanged.
pub fn replace_entry(format: Format, text: &str, profile: &str, entry: &str) -> Option<String> {
    let range = locate(format, text, profile)?;
    let tail = &text[range.end..];
    // A section that ran to the next header kept its blank separator line.
    let gap =
        if !tail.is_empty() && entry.ends_with('\n') && text[range.clone()].ends_with("\n\n") { "\n" } else { "" };
    Some(format!("{}{entry}{gap}{tail}", &text[..range.start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: BaitInput<'static> = BaitInput {
        access_key_id: "AKIAQYLPMN5HHHFPZAM2",
        secret_access_key: "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",
        profile: "prod",
        region: "us-east-1",
        session: None,
    };

    #[test]
    fn merge_refusals_name_no_command_line_flags() {
        for e in [
            MergeError::ProfileExists("prod".into()),
            MergeError::VariablesExist("AWS_ACCESS_KEY_ID".into()),
            MergeError::FileExists(Format::Python),
        ] {
            assert!(!e.to_string().contains("--"), "{e}");
        }
    }

    #[test]
    fn snapshots_of_every_format() {
        for format in Format::ALL {
            insta::assert_snapshot!(format.name(), render(format, &INPUT));
        }
    }

    const SESSION: BaitInput<'static> = BaitInput {
        access_key_id: "ASIAQYLPMN5HPLZXQ3NB",
        session: Some(SessionPart {
            token: "IQoJb3JpZ2luX2VjEBAaCXVzLWVhc3QtMSJHMEUCIQD+session/token=",
            expiration: "2026-12-07T23:04:11Z",
            role: None,
        }),
        ..INPUT
    };

    #[test]
    fn snapshots_of_every_format_with_session_credentials() {
        for format in Format::ALL {
            insta::assert_snapshot!(format!("{}-session", format.name()), render(format, &SESSION));
        }
    }

    #[test]
    fn session_credentials_are_located_replaced_and_removed_whole() {
        let token = SESSION.session.unwrap().token;
        for format in Format::ALL {
            let out = render(format, &SESSION);
            let carried = if format == Format::K8sSecret { B64.encode(token) } else { token.to_string() };
            assert!(out.contains(&carried), "{format}: {out}");
            // The entry a digest covers holds the token: a changed token is an altered entry.
            let range = locate(format, &out, "prod").unwrap();
            assert!(out[range].contains(&carried), "{format}");
            let other =
                BaitInput { session: Some(SessionPart { token: "another", ..SESSION.session.unwrap() }), ..SESSION };
            assert_ne!(entry_digest(format, &out, "prod"), entry_digest(format, &render(format, &other), "prod"));
        }
        // Merged into a file, refreshed in place, then taken out: the rest unchanged.
        for format in [Format::AwsCredentials, Format::AwsConfig, Format::Dotenv, Format::Shell] {
            let before = match format {
                Format::Dotenv | Format::Shell => "PATH=/usr/bin\nAWS_DEFAULT_REGION=eu-west-1\n",
                _ => "[default]\nregion = eu-west-1\n",
            };
            let merged = merge(format, before, &SESSION, false).unwrap().content;
            let fresh = BaitInput { access_key_id: "ASIAQYLPMN5HQQQQQQQQ", ..SESSION };
            let refreshed = replace_entry(format, &merged, "prod", &render(format, &fresh)).unwrap();
            assert!(
                refreshed.contains("ASIAQYLPMN5HQQQQQQQQ") && !refreshed.contains(SESSION.access_key_id),
                "{format}"
            );
            assert_eq!(refreshed.matches(token).count(), 1, "{format}: one session token, not two");
            let gone = unmerge(format, &refreshed, "prod").unwrap();
            assert!(!gone.contains(token) && !gone.contains("ASIA"), "{format}: {gone}");
        }
    }

    #[test]
    fn a_set_session_token_is_a_conflict_in_shell_files() {
        let err = merge(Format::Dotenv, "AWS_SESSION_TOKEN=theirs\n", &SESSION, false).unwrap_err();
        assert!(matches!(err, MergeError::VariablesExist(ref v) if v.contains("AWS_SESSION_TOKEN")), "{err}");
    }

    #[test]
    fn the_cli_cache_is_what_botocore_writes() {
        let text = render(Format::AwsCliCache, &SESSION);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Credentials"]["AccessKeyId"], SESSION.access_key_id);
        assert_eq!(v["Credentials"]["SessionToken"], SESSION.session.unwrap().token);
        assert_eq!(v["Credentials"]["Expiration"], "2026-12-07T23:04:11UTC", "botocore's date format");
        // Python's json.dumps: one line, its separators, the answer's order.
        assert!(!text.contains('\n') && text.starts_with("{\"Credentials\": {\"AccessKeyId\": \"ASIA"), "{text}");
        let order = ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"].map(|k| text.find(k).unwrap());
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(Format::AwsCliCache.session_only() && !Format::AwsCredentials.session_only());
        // With the role session: the rest of the AssumeRole answer, the
        // request ID its own per session.
        let role = RoleSession {
            id: "AROAQYLPMN5HJ6AXEXAMP:i-0a1b2c3d4e5f67890",
            arn: "arn:aws:sts::123456789012:assumed-role/app-instance-role/i-0a1b2c3d4e5f67890",
            issued: "2026-12-07T17:04:11Z",
        };
        let full = BaitInput { session: Some(SessionPart { role: Some(role), ..SESSION.session.unwrap() }), ..SESSION };
        let v: serde_json::Value = serde_json::from_str(&render(Format::AwsCliCache, &full)).unwrap();
        assert_eq!(v["AssumedRoleUser"]["Arn"], role.arn);
        let request = v["ResponseMetadata"]["RequestId"].as_str().unwrap();
        assert_eq!(request.len(), 36);
        assert_eq!(v["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"], request);
        assert_eq!(v["ResponseMetadata"]["HTTPHeaders"]["date"], "Mon, 07 Dec 2026 17:04:11 GMT");
        let other = BaitInput { session: Some(SessionPart { token: "another", ..full.session.unwrap() }), ..full };
        let w: serde_json::Value = serde_json::from_str(&render(Format::AwsCliCache, &other)).unwrap();
        assert_ne!(w["ResponseMetadata"]["RequestId"], request);
    }

    #[test]
    fn every_format_carries_the_key_pair() {
        for format in Format::ALL {
            let out = render(format, &INPUT);
            if format == Format::K8sSecret {
                assert!(out.contains(&B64.encode(INPUT.access_key_id)));
            } else {
                assert!(out.contains(INPUT.access_key_id), "{format}");
                assert!(out.contains(INPUT.secret_access_key), "{format}");
            }
            let braces = matches!(format, Format::Javascript | Format::Java | Format::AwsCliCache);
            assert!(!out.contains('{') || braces, "{format}: {out}");
        }
    }

    #[test]
    fn format_names_and_aliases_parse() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        assert_eq!("k8s".parse::<Format>().unwrap(), Format::K8sSecret);
        let err = "yaml".parse::<Format>().unwrap_err();
        assert!(err.contains("aws-credentials") && err.contains("github-actions"), "{err}");
    }

    const REAL: &str = "[default]\naws_access_key_id = AKIAREALREALREALREAL\naws_secret_access_key = real\n\n[staging]\naws_access_key_id = AKIASTAGINGSTAGINGST\naws_secret_access_key = s\n";

    #[test]
    fn merge_keeps_every_other_profile_byte_for_byte() {
        let merged = merge(Format::AwsCredentials, REAL, &INPUT, false).unwrap();
        assert!(merged.content.starts_with(REAL));
        assert!(merged.content.ends_with("[prod]\naws_access_key_id = AKIAQYLPMN5HHHFPZAM2\naws_secret_access_key = tfteSlswRu7BJ86wekitnifILbZam1KYY3TG+Qp/\n"));
        assert!(!merged.replaced);
    }

    #[test]
    fn merge_refuses_to_clobber_a_profile_unless_forced() {
        let same = BaitInput { profile: "staging", ..INPUT };
        assert_eq!(merge(Format::AwsCredentials, REAL, &same, false), Err(MergeError::ProfileExists("staging".into())));
        let forced = merge(Format::AwsCredentials, REAL, &same, true).unwrap();
        assert!(forced.replaced);
        assert!(forced.content.contains("AKIAREALREALREALREAL"), "default profile kept");
        assert!(!forced.content.contains("AKIASTAGINGSTAGINGST"), "old staging replaced");
        assert_eq!(forced.content.matches("[staging]").count(), 1);
    }

    #[test]
    fn config_sections_use_the_profile_prefix() {
        let existing = "[default]\nregion = eu-west-1\n\n[profile prod]\nregion = us-west-2\n";
        assert_eq!(merge(Format::AwsConfig, existing, &INPUT, false), Err(MergeError::ProfileExists("prod".into())));
        let def = BaitInput { profile: "default", ..INPUT };
        assert!(render(Format::AwsConfig, &def).starts_with("[default]\n"));
        let other = BaitInput { profile: "backup", ..INPUT };
        let merged = merge(Format::AwsConfig, existing, &other, false).unwrap();
        assert!(merged.content.starts_with(existing) && merged.content.contains("[profile backup]"));
    }

    #[test]
    fn dotenv_merge_checks_the_key_variables() {
        let env = "DATABASE_URL=postgres://app@db/app\nAWS_DEFAULT_REGION=eu-west-1\n";
        let merged = merge(Format::Dotenv, env, &INPUT, false).unwrap();
        assert!(merged.content.starts_with("DATABASE_URL=postgres://app@db/app\n"));
        assert_eq!(merged.content.matches("AWS_DEFAULT_REGION").count(), 1);
        let with_key = "export AWS_ACCESS_KEY_ID=AKIAREALREALREALREAL\n";
        assert!(matches!(merge(Format::Shell, with_key, &INPUT, false), Err(MergeError::VariablesExist(_))));
        let forced = merge(Format::Shell, with_key, &INPUT, true).unwrap();
        assert!(!forced.content.contains("AKIAREALREALREALREAL"));
    }

    #[test]
    fn entries_are_located_digested_replaced_and_removed_leaving_the_rest() {
        for format in Format::ALL {
            let entry = render(format, &INPUT);
            let digest = entry_digest(format, &entry, "prod").unwrap_or_else(|| panic!("{format}"));
            if !format.merges() {
                assert_eq!(unmerge(format, &entry, "prod").as_deref(), Some(""));
                continue;
            }
            let existing = match format {
                Format::AwsCredentials => REAL.to_string(),
                Format::AwsConfig => "[default]\nregion = eu-west-1\n".to_string(),
                _ => "DATABASE_URL=postgres://app@db/app\n# keep me\n".to_string(),
            };
            let merged = merge(format, &existing, &INPUT, false).unwrap().content;
            assert_eq!(entry_digest(format, &merged, "prod").as_deref(), Some(digest.as_str()), "{format}");
            assert_eq!(unmerge(format, &merged, "prod").unwrap(), existing, "{format}: removal restores the file");
            let other = BaitInput { secret_access_key: "another+secret/value", ..INPUT };
            let rotated = replace_entry(format, &merged, "prod", &render(format, &other)).unwrap();
            assert!(rotated.starts_with(&existing) && !rotated.contains(INPUT.secret_access_key), "{format}");
            assert_ne!(entry_digest(format, &rotated, "prod").unwrap(), digest, "{format}: a change shows");
            assert_eq!(unmerge(format, &rotated, "prod").unwrap(), existing);
            assert_eq!(entry_digest(format, &existing, "prod"), None, "{format}");
        }
    }

    #[test]
    fn an_entry_in_the_middle_is_removed_and_replaced_in_place() {
        let text =
            "[prod]\naws_access_key_id = AKIAQYLPMN5HHHFPZAM2\naws_secret_access_key = x\n\n[staging]\nregion = a\n";
        assert_eq!(unmerge(Format::AwsCredentials, text, "prod").unwrap(), "[staging]\nregion = a\n");
        let swapped = replace_entry(Format::AwsCredentials, text, "prod", "[prod]\nnew = 1\n").unwrap();
        assert_eq!(swapped, "[prod]\nnew = 1\n\n[staging]\nregion = a\n");
        let edited = text.replace("= x", "= y");
        assert_ne!(
            entry_digest(Format::AwsCredentials, text, "prod"),
            entry_digest(Format::AwsCredentials, &edited, "prod")
        );
    }

    #[test]
    fn source_files_are_not_merged() {
        assert_eq!(merge(Format::Python, "x = 1\n", &INPUT, false), Err(MergeError::FileExists(Format::Python)));
        assert_eq!(merge(Format::Python, "", &INPUT, false).unwrap().content, render(Format::Python, &INPUT));
    }
}
