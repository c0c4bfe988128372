//! `honeytrail check`: what a key gives away.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use honeytrail_core::keyid;
use honeytrail_core::stealth::{self, Level, Subject};
use honeytrail_core::TokenKind;

use super::print_json;
use crate::app::App;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A registered token (access key ID or #N), or any access key ID
    target: String,
    #[arg(long)]
    json: bool,
}

/// The IAM path inside a user ARN: `arn:aws:iam::1:user/a/b/name` → `/a/b/`.
fn path_of_arn(arn: &str) -> Option<String> {
    let resource = arn.split(':').nth(5)?;
    let rest = resource.strip_prefix("user")?;
    let last = rest.rfind('/')?;
    Some(rest[..=last].to_string())
}

/// The stealth check of a registered token, as `check` and the server run it.
pub fn report_for(token: &honeytrail_core::Token) -> stealth::Report {
    let path = match (&token.iam_user_arn, token.kind) {
        (Some(arn), _) => path_of_arn(arn),
        (None, TokenKind::AwsMinted) => Some("/".to_string()),
        _ => None,
    };
    stealth::check(&Subject {
        access_key_id: &token.access_key_id,
        iam_user_name: token.iam_user_name.as_deref(),
        iam_path: path.as_deref(),
        account_id: token.account_id.as_deref(),
    })
}

pub async fn run(app: &App, args: CheckArgs) -> Result<ExitCode> {
    let store = app.store().await?;
    let reference = args.target.trim();
    let token = match store.find_token(reference).await {
        Ok(t) => Some(t),
        Err(honeytrail_store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let key = match &token {
        Some(t) => t.access_key_id.clone(),
        None => keyid::parse(reference)?,
    };
    let path = token.as_ref().and_then(|t| match (&t.iam_user_arn, t.kind) {
        (Some(arn), _) => path_of_arn(arn),
        (None, TokenKind::AwsMinted) => Some("/".to_string()),
        _ => None,
    });
    let subject = Subject {
        access_key_id: &key,
        iam_user_name: token.as_ref().and_then(|t| t.iam_user_name.as_deref()),
        iam_path: path.as_deref(),
        account_id: token.as_ref().and_then(|t| t.account_id.as_deref()),
    };
    let report = stealth::check(&subject);
    let verdict = report.verdict();
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            registered: bool,
            verdict: Level,
            #[serde(flatten)]
            report: &'a stealth::Report,
        }
        print_json(&Out { registered: token.is_some(), verdict, report: &report })?;
    } else {
        match &token {
            Some(t) => println!("{key} (token #{}, {})", t.id, t.kind),
            None => println!("{key} (not registered in honeytrail)"),
        }
        for f in &report.findings {
            println!("  {:<5} {}", f.level.to_string(), f.message);
        }
        println!("verdict: {verdict}");
    }
    Ok(ExitCode::from(match verdict {
        Level::Pass | Level::Note => 0,
        Level::Warn => 2,
        Level::Fail => 3,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn arn_paths() {
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:user/svc").as_deref(), Some("/"));
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:user/a/b/svc").as_deref(), Some("/a/b/"));
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:role/x"), None);
    }
}
