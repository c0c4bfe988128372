//! `honeytrail token …`

use std::io::Read;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use honeytrail_app::ops::{MintRequest, Retired, Rotated, TokenQuery};
use honeytrail_app::Ops;
use honeytrail_core::keyid::{self, AccountDecode};
use honeytrail_core::{describe, Secret, Token, TokenKind, TokenState};
use serde::Serialize;

use super::{labels_text, parse_labels, print_json, print_table, when, SpotArgs};
use honeytrail_app::context::hostname;
use honeytrail_app::App;

mod import;

// Parsed once per run: the size of the import variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a new honey key in the canary account
    #[command(subcommand)]
    Mint(MintKind),
    /// Register a key made elsewhere (canarytokens.org, another team, the target host)
    #[command(subcommand)]
    Import(ImportKind),
    /// List tokens
    List(ListArgs),
    /// Show one token with its placements and chain of custody
    Show(ShowArgs),
    /// Print the sentence an alert will use for this token
    Describe(RefArgs),
    /// Delete the key in AWS (and its user once unused); the history is kept
    Retire(RefArgs),
    /// Replace the key with a fresh one and carry its placements over
    Rotate(RefArgs),
}

#[derive(Subcommand, Debug)]
pub enum MintKind {
    /// An AWS IAM access key on a user with no privileges
    Aws(MintArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImportKind {
    /// An AWS access key, by ID (secret optional), or many from a file
    Aws(import::ImportArgs),
}

#[derive(Args, Debug)]
pub struct MintArgs {
    /// IAM user name [default: generated from mint.naming_pattern]
    #[arg(long)]
    name: Option<String>,
    /// Token label name=value (repeatable)
    #[arg(long = "label", value_name = "NAME=VALUE")]
    labels: Vec<String>,
    /// A note for responders
    #[arg(long, default_value = "")]
    memo: String,
    /// Put the key on an existing honey user that holds one key (IAM allows two)
    #[arg(long)]
    pack: bool,
    /// How many keys to mint, spread over the canary-account pool by room left (all or none when the pool is full)
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct RefArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum StateArg {
    Active,
    Retired,
    All,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Which tokens
    #[arg(long, value_enum, default_value = "active")]
    state: StateArg,
    /// Only tokens with this label (NAME or NAME=VALUE)
    #[arg(long, value_name = "NAME[=VALUE]")]
    label: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// Also print the secret access key (recorded as a custody hop)
    #[arg(long)]
    reveal_secret: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// The token commands a running server offers.
pub async fn remote(r: &super::remote::Remote, cmd: TokenCommand) -> Result<ExitCode> {
    use super::remote::q;
    let local_only = |what: &str| anyhow!("{what} works against a local store only; run it without --server");
    match cmd {
        TokenCommand::List(args) => {
            let mut path = String::from("/tokens?");
            match args.state {
                StateArg::Active => path.push_str("state=active&"),
                StateArg::Retired => path.push_str("state=retired&"),
                StateArg::All => {}
            }
            if let Some(l) = &args.label {
                path.push_str(&format!("label={}", q(l)));
            }
            let tokens: Vec<Token> = serde_json::from_value(serde_json::Value::Array(r.get_all(&path).await?))?;
            print_tokens(&tokens, args.json)
        }
        TokenCommand::Show(args) => {
            if args.reveal_secret {
                return Err(local_only("--reveal-secret"));
            }
            let d = r.get(&format!("/tokens/{}", q(&args.token))).await?;
            if args.json {
                return print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            let t = &d["token"];
            println!(
                "{}  (token #{}, {}, {})",
                t["access_key_id"].as_str().unwrap_or(""),
                t["id"],
                t["kind"].as_str().unwrap_or(""),
                t["state"].as_str().unwrap_or("")
            );
            println!("{}", d["description"]["headline"].as_str().unwrap_or(""));
            for h in d["custody"].as_array().into_iter().flatten() {
                println!("  custody: {} {}", h["at"].as_str().unwrap_or(""), h["description"].as_str().unwrap_or(""));
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Describe(args) => {
            let d = r.get(&format!("/tokens/{}", q(&args.token))).await?;
            println!("{}", d["description"]["headline"].as_str().unwrap_or(""));
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Retire(args) => {
            let t = r.post(&format!("/tokens/{}/retire", q(&args.token)), &serde_json::json!({})).await?;
            println!("retired {}", t["access_key_id"].as_str().unwrap_or(""));
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Mint(MintKind::Aws(args)) => {
            if args.name.is_some() || args.pack {
                return Err(local_only("--name / --pack"));
            }
            let labels = parse_labels(&args.labels)?;
            let mut minted = Vec::new();
            for _ in 0..args.count {
                let t: Token = serde_json::from_value(
                    r.post("/tokens/mint", &serde_json::json!({"labels": labels, "memo": args.memo})).await?,
                )?;
                if !args.json {
                    println!("minted {}  (token #{})", t.access_key_id, t.id);
                }
                minted.push(t);
            }
            if args.json {
                return print_json(&minted).map(|_| ExitCode::SUCCESS);
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Import(ImportKind::Aws(args)) => import::remote(r, args).await,
        TokenCommand::Rotate(_) => Err(local_only("token rotate")),
    }
}

pub async fn run(app: &App, cmd: TokenCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    match cmd {
        TokenCommand::Mint(MintKind::Aws(args)) => mint(app, &ops, args).await,
        TokenCommand::Import(ImportKind::Aws(args)) => import::run(app, &ops, args).await,
        TokenCommand::List(args) => list(app, &ops, args).await,
        TokenCommand::Show(args) => show(app, &ops, args).await,
        TokenCommand::Describe(args) => describe_cmd(app, &ops, args).await,
        TokenCommand::Retire(args) => retire(app, &ops, args).await,
        TokenCommand::Rotate(args) => rotate(app, &ops, args).await,
    }
}

async fn mint(app: &App, ops: &Ops, args: MintArgs) -> Result<ExitCode> {
    let labels = parse_labels(&args.labels)?;
    let request = MintRequest { labels, memo: args.memo, name: args.name, pack: args.pack };
    let minted = ops.mint_batch(&app.acting(), request, args.count as usize).await?;
    if args.json {
        return print_json(&minted).map(|_| ExitCode::SUCCESS);
    }
    for t in &minted {
        println!(
            "minted {}  (token #{}, IAM user {}, account {})",
            t.access_key_id,
            t.id,
            t.iam_user_name.as_deref().unwrap_or("?"),
            t.account_id.as_deref().unwrap_or("?")
        );
    }
    if let Some(t) = minted.first() {
        println!("\nThe secret is stored sealed. Write bait with: honeytrail render {} --format aws-credentials --into ~/.aws/credentials", t.access_key_id);
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(app: &App, ops: &Ops, args: ListArgs) -> Result<ExitCode> {
    let state = match args.state {
        StateArg::Active => Some(TokenState::Active.to_string()),
        StateArg::Retired => Some(TokenState::Retired.to_string()),
        StateArg::All => None,
    };
    let q = TokenQuery { state, label: args.label.clone(), ..TokenQuery::default() };
    let tokens = ops.search_tokens(&app.acting(), &q).await?;
    print_tokens(&tokens, args.json)
}

fn print_tokens(tokens: &[Token], json: bool) -> Result<ExitCode> {
    if json {
        return print_json(&tokens).map(|_| ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        eprintln!("no tokens match; mint one with `honeytrail token mint aws` or import one with `honeytrail token import aws`");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                format!("#{}", t.id),
                t.access_key_id.clone(),
                t.kind.to_string(),
                t.state.to_string(),
                t.iam_user_name.clone().unwrap_or_else(|| "-".into()),
                labels_text(&t.labels),
                when(t.created_at),
            ]
        })
        .collect();
    print_table(&["ID", "ACCESS KEY", "KIND", "STATE", "IAM USER", "LABELS", "CREATED"], &rows);
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    token: &'a Token,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_access_key: Option<&'a str>,
    placements: Vec<honeytrail_core::model::PlacedToken>,
    custody: &'a [honeytrail_core::CustodyHop],
}

async fn show(app: &App, ops: &Ops, args: ShowArgs) -> Result<ExitCode> {
    let detail = ops.token_detail(&app.acting(), &args.token).await?;
    let token = &detail.token;
    let secret = if args.reveal_secret {
        let shown = format!("on a terminal on {} (token show --reveal-secret)", hostname());
        Some(ops.reveal_secret(&app.acting(), &args.token, &shown).await?)
    } else {
        None
    };
    let custody = &detail.custody;
    if args.json {
        let placements = detail
            .placements
            .iter()
            .map(|p| honeytrail_core::model::PlacedToken {
                access_key_id: token.access_key_id.clone(),
                placement: p.clone(),
            })
            .collect();
        let shown = Shown { token, secret_access_key: secret.as_ref().map(Secret::expose), placements, custody };
        return print_json(&shown).map(|_| ExitCode::SUCCESS);
    }
    println!("token #{}  {}", token.id, token.access_key_id);
    let field = |name: &str, value: String| println!("  {name:<14}{value}");
    field("kind", token.kind.to_string());
    field(
        "state",
        match token.retired_at {
            Some(at) => format!("retired {}", when(at)),
            None => token.state.to_string(),
        },
    );
    field("created", when(token.created_at));
    if let Some(u) = &token.iam_user_name {
        field("IAM user", u.clone());
    }
    if let Some(a) = &token.iam_user_arn {
        field("ARN", a.clone());
    }
    field("account", token.account_id.clone().unwrap_or_else(|| account_hint(&token.access_key_id)));
    if let Some(s) = &token.source {
        field("made at", s.clone());
    }
    if !token.memo.is_empty() {
        field("memo", token.memo.clone());
    }
    if !token.labels.is_empty() {
        field("labels", labels_text(&token.labels));
    }
    if let Some(from) = token.rotated_from {
        field("rotated from", format!("token #{from}"));
    }
    field(
        "secret",
        match (&secret, token.has_secret) {
            (Some(s), _) => s.expose().to_string(),
            (None, true) => "held, sealed (show with --reveal-secret)".into(),
            (None, false) => "not held (key registered by ID only)".into(),
        },
    );
    println!("\nplacements:");
    if detail.placements.is_empty() {
        println!("  none; add one with `honeytrail placement add {} --host … --path …`", token.access_key_id);
    }
    for p in &detail.placements {
        let removed = p.removed_at.map(|r| format!(" [removed {}]", when(r))).unwrap_or_default();
        println!("  #{} {} ({}){removed}", p.id, describe::spot_phrase(&p.spot), when(p.placed_at));
    }
    println!("\nchain of custody:");
    if custody.is_empty() {
        println!(
            "  none recorded; add hops with `honeytrail custody add {} \"sent by email to …\"`",
            token.access_key_id
        );
    }
    for h in custody {
        let actor = h.actor.as_deref().map(|a| format!(" (by {a})")).unwrap_or_default();
        println!("  {}. {} — {}{actor}", h.seq, when(h.at), h.description);
    }
    Ok(ExitCode::SUCCESS)
}

fn account_hint(key: &str) -> String {
    match keyid::decode_account(key) {
        AccountDecode::Account(a) => format!("{a} (decoded from the key ID)"),
        other => format!("unknown ({other})"),
    }
}

#[derive(Serialize)]
struct DescribedJson {
    access_key_id: String,
    headline: String,
    placements: Vec<String>,
    custody: Vec<String>,
}

async fn describe_cmd(app: &App, ops: &Ops, args: RefArgs) -> Result<ExitCode> {
    let detail = ops.token_detail(&app.acting(), &args.token).await?;
    let d = detail.description;
    if args.json {
        return print_json(&DescribedJson {
            access_key_id: detail.token.access_key_id,
            headline: d.headline,
            placements: d.placements,
            custody: d.custody,
        })
        .map(|_| ExitCode::SUCCESS);
    }
    print!("{d}");
    Ok(ExitCode::SUCCESS)
}

async fn retire(app: &App, ops: &Ops, args: RefArgs) -> Result<ExitCode> {
    let token = ops.find_token(&args.token).await?;
    let was = token.state;
    let Retired { token: retired, user_deleted } = ops.retire(&app.acting(), &args.token).await?;
    if args.json {
        return print_json(&retired).map(|_| ExitCode::SUCCESS);
    }
    match (token.kind, was) {
        (TokenKind::AwsMinted, TokenState::Retired) => println!("{} was already retired; its key is confirmed deleted in AWS", token.access_key_id),
        (TokenKind::AwsMinted, _) => println!(
            "retired {}: key deleted in AWS{}; placements and custody are kept, and a later use still raises an alert",
            token.access_key_id,
            if user_deleted { format!(", IAM user {} deleted", token.iam_user_name.as_deref().unwrap_or("?")) } else { String::new() }
        ),
        (TokenKind::AwsDecoy, _) => println!("{} is a decoy; decoy remove deletes it", token.access_key_id),
        (TokenKind::AwsSession, _) => println!(
            "retired session canary {}: its sessions expire by themselves and its role denies everything; a later use still raises an alert",
            token.access_key_id
        ),
        (TokenKind::AwsImported, _) => println!(
            "retired {} in honeytrail. It was imported, so honeytrail did not delete it in AWS: deactivate it where it was made{}",
            token.access_key_id,
            token.source.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(app: &App, ops: &Ops, args: RefArgs) -> Result<ExitCode> {
    let Rotated { old, token, user_name, placements, old_key_left_in_aws } =
        ops.rotate(&app.acting(), &args.token).await?;
    if let Some(e) = old_key_left_in_aws {
        eprintln!("warning: the old key {} is retired in honeytrail but deleting it in AWS failed: {e}. Run `honeytrail token retire {}` to try again", old.access_key_id, old.access_key_id);
    }
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!("rotated {} → {} (token #{}, IAM user {user_name})", old.access_key_id, token.access_key_id, token.id);
    if placements.is_empty() {
        println!("no placements to carry over");
    } else {
        println!(
            "{} placement(s) carried over; the bait there still holds the old key. Re-render each:",
            placements.len()
        );
        for p in placements {
            let format = p.spot.format.as_deref().unwrap_or("aws-credentials");
            println!(
                "  honeytrail render {} --format {format} --into {}   # on {}",
                token.access_key_id, p.spot.path, p.spot.host
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a secret access key from standard input (first line, trimmed).
pub fn read_secret_stdin() -> Result<Secret> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read the secret from standard input")?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        bail!("standard input held no secret access key");
    }
    Ok(Secret::new(secret))
}

pub(crate) fn spot_args_present(s: &SpotArgs) -> bool {
    s.owner.is_some() || s.asset.is_some() || s.serial.is_some() || s.notes.is_some() || !s.placement_labels.is_empty()
}
