//! `honeytrail demo`: a walkthrough of phase 1 on SQLite with no cloud
//! account. It runs the real commands, in-process, against a fresh data
//! directory, and prints each command before its output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser};
use rand::Rng;

use honeytrail_app::config::Overrides;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to put the demo's data [default: <data-dir>/demo]; it is recreated each run
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A secret access key of the real shape: 40 characters of base64.
fn sample_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

pub async fn run(args: DemoArgs, overrides: Overrides) -> Result<ExitCode> {
    let base = overrides.data_dir.clone().unwrap_or_else(honeytrail_app::config::default_data_dir);
    let dir = args.dir.unwrap_or_else(|| base.join("demo"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear the old demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("home/.aws"))?;
    let config = dir.join("honeytrail.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n\n{}", dir.display().to_string(), honeytrail_app::config::DEFAULT_CONFIG),
    )?;

    // A laptop's existing credentials file, with a real profile that must survive.
    let credentials = dir.join("home/.aws/credentials");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIAEXISTINGPROFILE1\naws_secret_access_key = keep-me-exactly-as-i-am\n",
    )?;

    let mut rng = rand::thread_rng();
    let laptop_key = honeytrail_core::keyid::synthesize(210987654321, rng.gen());
    let ci_key = honeytrail_core::keyid::synthesize(210987654321, rng.gen());
    let keys = dir.join("keys.jsonl");
    std::fs::write(
        &keys,
        format!(
            "{{\"access_key_id\":\"{laptop_key}\",\"secret_access_key\":\"{}\",\"user_name\":\"payments-s3-sync-prod\",\"source\":\"the security team's canary account\",\"labels\":{{\"team\":\"payments\",\"tier\":\"laptop\"}},\"memo\":\"critical engineers' laptops\"}}\n\
             {{\"access_key_id\":\"{ci_key}\",\"user_name\":\"ci-deploy-artifacts\",\"source\":\"generated on ci-runner-3 by the infra team\",\"labels\":{{\"team\":\"infra\"}},\"host\":\"ci-runner-3\",\"path\":\"/etc/ci/deploy.env\",\"owner\":\"infra team\",\"format\":\"dotenv\"}}\n\
             {{\"access_key_id\":\"AKIASP2TPHJSQH3FJRUX\",\"source\":\"canarytokens.org\",\"memo\":\"an old free canary, kept for comparison\"}}\n",
            sample_secret()
        ),
    )?;

    let trail = dir.join("210987654321_CloudTrail_us-east-1_20261128T0915Z_demo.json");
    std::fs::write(&trail, intruder_log(&laptop_key))?;

    println!(
        "honeytrail demo: mint/import, place, chain of custody, bait, stealth, then detection, on SQLite in {}\n",
        dir.display()
    );
    let cred = credentials.display().to_string();
    let steps: Vec<(&str, Vec<String>)> = vec![
        ("Register three keys made elsewhere, one with its secret, from a JSON lines file", vec!["token".into(), "import".into(), "aws".into(), "--from".into(), keys.display().to_string()]),
        ("The registry", vec!["token".into(), "list".into()]),
        ("Record how the laptop key travels before it is planted", vec!["custody".into(), "add".into(), laptop_key.clone(), "sent by email to maria@example.com".into(), "--by".into(), "alice (security)".into()]),
        ("", vec!["custody".into(), "add".into(), laptop_key.clone(), "saved to Maria's password manager".into(), "--by".into(), "maria".into()]),
        (
            "Merge it into Maria's existing ~/.aws/credentials: her [default] profile is left untouched, a backup is kept, and the placement is recorded",
            vec![
                "render".into(), laptop_key.clone(), "--format".into(), "aws-credentials".into(), "--profile".into(), "prod".into(),
                "--into".into(), cred.clone(), "--host".into(), "maria-mbp".into(), "--owner".into(), "Maria".into(),
                "--asset".into(), "MacBook Pro".into(), "--serial".into(), "C02XYZ".into(),
            ],
        ),
        ("The same key as a Python constant, for a source tree", vec!["render".into(), laptop_key.clone(), "--format".into(), "python".into()]),
        ("What an alert will say about the laptop key", vec!["token".into(), "describe".into(), laptop_key.clone()]),
        ("Stealth check: the key decodes to our own account and the user name is plausible", vec!["check".into(), laptop_key.clone()]),
        ("Stealth check of the canarytokens.org key: its account is public, so scanners spot it", vec!["check".into(), "AKIASP2TPHJSQH3FJRUX".into()]),
        ("Where did we put them?", vec!["placement".into(), "list".into()]),
        (
            "Days later, someone uses the laptop key. Its CloudTrail log (written here as AWS would deliver it) is scanned",
            vec!["ingest".into(), trail.display().to_string()],
        ),
        ("One incident, with its severity", vec!["incident".into(), "list".into()]),
        (
            "What a responder reads: whose laptop, how the key travelled, what the intruder called from where, what to do",
            vec!["incident".into(), "show".into(), "1".into()],
        ),
    ];
    for (title, argv) in steps {
        if !title.is_empty() {
            println!("── {title}");
        }
        println!("$ honeytrail {}", argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
        let mut full = vec![
            "honeytrail".to_string(),
            "--config".into(),
            config.display().to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
        ];
        full.push("--database".into());
        full.push(format!("sqlite://{}", dir.join("honeytrail.sqlite").display()));
        full.extend(argv);
        let cli = crate::Cli::try_parse_from(&full).context("demo step arguments")?;
        // Checks exit non-zero on purpose (warn / fail); the demo goes on.
        Box::pin(crate::run(cli)).await?;
        println!();
    }
    println!("── The credentials file now holds both profiles:");
    print!(
        "{}",
        std::fs::read_to_string(&credentials)?
            .replace(&secret_of(&credentials, "prod").unwrap_or_default(), "…(secret)…")
    );
    println!("\nEverything above is in {}. Explore it with, for example:", dir.display());
    println!("  honeytrail --data-dir {} token show {laptop_key}", dir.display());
    println!("  (from a checkout: cargo run --release -- --data-dir {} placement list --owner maria)", dir.display());
    println!("  or in the web console: honeytrail --data-dir {} user add you --role admin", dir.display());
    println!("                         honeytrail --data-dir {} serve", dir.display());
    println!(
        "Mint real keys in a canary account with `honeytrail token mint aws` (AWS credentials needed; see README)."
    );
    Ok(ExitCode::SUCCESS)
}

/// A CloudTrail log of an intruder trying the laptop key: who am I, what
/// buckets, which users (refused), from one address with a scanner's user
/// agent, as AWS writes it (`{"Records": [...]}`).
fn intruder_log(key: &str) -> String {
    let calls = [
        ("09:14:07", "sts.amazonaws.com", "GetCallerIdentity", None),
        ("09:14:09", "s3.amazonaws.com", "ListBuckets", None),
        ("09:14:12", "iam.amazonaws.com", "ListUsers", Some("AccessDenied")),
        ("09:14:13", "iam.amazonaws.com", "GetAccountAuthorizationDetails", Some("AccessDenied")),
        ("09:15:40", "ec2.amazonaws.com", "DescribeInstances", Some("UnauthorizedOperation")),
    ];
    let records: Vec<serde_json::Value> = calls
        .iter()
        .enumerate()
        .map(|(n, (at, source, name, error))| {
            let mut r = serde_json::json!({
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "principalId": "AIDADEMOEXAMPLE00001",
                    "arn": "arn:aws:iam::210987654321:user/payments-s3-sync-prod", "accountId": "210987654321",
                    "accessKeyId": key, "userName": "payments-s3-sync-prod"},
                "eventTime": format!("2026-11-28T{at}Z"), "eventSource": source, "eventName": name,
                "awsRegion": if *source == "ec2.amazonaws.com" { "eu-west-1" } else { "us-east-1" },
                "sourceIPAddress": "185.220.101.47", "userAgent": "TruffleHog",
                "requestParameters": null, "responseElements": null,
                "requestID": format!("demo-request-{n}"), "eventID": format!("demo-event-{n}"),
                "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
                "recipientAccountId": "210987654321", "eventCategory": "Management"
            });
            if let Some(code) = error {
                r["errorCode"] = (*code).into();
                r["errorMessage"] = format!(
                    "User: arn:aws:iam::210987654321:user/payments-s3-sync-prod is not authorized to perform: {name}"
                )
                .into();
            }
            r
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

fn secret_of(path: &Path, profile: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let section = text.split(&format!("[{profile}]")).nth(1)?;
    section.lines().find_map(|l| l.strip_prefix("aws_secret_access_key = ").map(str::to_string))
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:#~".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
