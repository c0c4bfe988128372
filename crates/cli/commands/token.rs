//! `honeytrail token …`

use std::io::Read;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use honeytrail_aws::{AwsError, CanaryAccount, DenyGuard, MintSpec, MintedKey};
use honeytrail_core::keyid::{self, AccountDecode};
use honeytrail_core::{describe, naming, NewToken, Secret, Token, TokenKind, TokenState};
use honeytrail_store::{NewHop, PlacementFilter, Store, TokenFilter};
use serde::Serialize;

use super::{labels_text, parse_labels, print_json, print_table, when, SpotArgs};
use crate::app::{hostname, App};
use crate::config::Guard;

mod import;

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
    /// How many keys to mint
    #[arg(long, default_value_t = 1)]
    count: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct RefArgs {
    /// Access key ID or token number (#N)
    token: String,
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
    #[arg(long, value_enum, default_value = "active")]
    state: StateArg,
    /// Only tokens with this label (NAME or NAME=VALUE)
    #[arg(long, value_name = "NAME[=VALUE]")]
    label: Option<String>,
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
            let tokens: Vec<Token> = serde_json::from_value(r.get(&path).await?)?;
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
    let store = app.store().await?;
    match cmd {
        TokenCommand::Mint(MintKind::Aws(args)) => mint(app, &store, args).await,
        TokenCommand::Import(ImportKind::Aws(args)) => import::run(app, &store, args).await,
        TokenCommand::List(args) => list(&store, args).await,
        TokenCommand::Show(args) => show(app, &store, args).await,
        TokenCommand::Describe(args) => describe_cmd(&store, args).await,
        TokenCommand::Retire(args) => retire(app, &store, args).await,
        TokenCommand::Rotate(args) => rotate(app, &store, args).await,
    }
}

fn guard(app: &App) -> DenyGuard {
    let m = &app.config.mint;
    match m.guard {
        Guard::Inline => DenyGuard::Inline { policy_name: m.policy_name.clone() },
        Guard::Group => DenyGuard::Group { group_name: m.group_name.clone(), policy_name: m.policy_name.clone() },
    }
}

/// Creates one key in AWS: on a packed user when asked and possible, else on
/// a new user with a generated (or the given) name.
async fn mint_in_aws(
    app: &App,
    store: &Store,
    account: &CanaryAccount,
    name: Option<&str>,
    pack: bool,
) -> Result<MintedKey> {
    if pack {
        if let Some(user) = user_with_one_key(store).await? {
            return Ok(account.add_key(&user).await?);
        }
    }
    if let Some(name) = name {
        naming::validate_user_name(name)?;
        return Ok(account.mint(&MintSpec { user_name: name.to_string(), guard: guard(app) }).await?);
    }
    // A generated name can collide with an existing user; draw again a few times.
    let mut last = None;
    for _ in 0..5 {
        let candidate = naming::generate(&app.config.mint.naming_pattern, &mut rand::thread_rng())?;
        let taken = !store
            .list_tokens(&TokenFilter { iam_user_name: Some(candidate.clone()), ..Default::default() })
            .await?
            .is_empty();
        if taken {
            continue;
        }
        match account.mint(&MintSpec { user_name: candidate, guard: guard(app) }).await {
            Err(e @ AwsError::AlreadyExists { .. }) => last = Some(e),
            other => return Ok(other?),
        }
    }
    Err(last
        .map(Into::into)
        .unwrap_or_else(|| anyhow!("could not find a free IAM user name; widen mint.naming_pattern")))
}

async fn user_with_one_key(store: &Store) -> Result<Option<String>> {
    let tokens = store.list_tokens(&TokenFilter::active_minted()).await?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for t in tokens {
        if let Some(u) = t.iam_user_name {
            *counts.entry(u).or_default() += 1;
        }
    }
    Ok(counts.into_iter().find(|(_, n)| *n == 1).map(|(u, _)| u))
}

async fn mint(app: &App, store: &Store, args: MintArgs) -> Result<ExitCode> {
    if args.count > 1 && args.name.is_some() {
        bail!("--name names one IAM user; drop it to mint --count {} keys with generated names", args.count);
    }
    let labels = parse_labels(&args.labels)?;
    let account = app.canary_account().await;
    let pack = args.pack || app.config.mint.pack_two_keys;
    let mut minted = Vec::new();
    for _ in 0..args.count {
        let key = match mint_in_aws(app, store, &account, args.name.as_deref(), pack).await {
            Ok(key) => key,
            Err(e) if !minted.is_empty() => {
                let done: Vec<&str> = minted.iter().map(|t: &Token| t.access_key_id.as_str()).collect();
                return Err(e.context(format!(
                    "{} key(s) were minted and registered before this failure: {}",
                    done.len(),
                    done.join(", ")
                )));
            }
            Err(e) => return Err(e),
        };
        let token = record_minted(store, &account, &key, args.memo.clone(), labels.clone(), &app.actor()).await?;
        minted.push(token);
    }
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

/// Records a key just minted in AWS, or deletes it again in AWS if the store
/// refuses it, so a key exists in both or in neither.
async fn record_minted(
    store: &Store,
    account: &CanaryAccount,
    key: &MintedKey,
    memo: String,
    labels: honeytrail_core::Labels,
    actor: &str,
) -> Result<Token> {
    let new = minted_token(key, memo, labels);
    let hop = generated_hop(actor, key);
    match store.insert_token(&new, &[], &[hop]).await {
        Ok(token) => Ok(token),
        Err(e) => {
            let cleanup = async {
                account.delete_key(&key.user_name, &key.access_key_id).await?;
                account.delete_user_if_unused(&key.user_name).await
            }
            .await;
            Err(match cleanup {
                Ok(_) => anyhow!(e).context(format!("minted {} but could not record it, so it was deleted again in AWS", key.access_key_id)),
                Err(c) => anyhow!(e).context(format!(
                    "minted {} but could not record it, and deleting it in AWS failed too ({c}); delete it by hand: aws iam delete-access-key --user-name {} --access-key-id {}",
                    key.access_key_id, key.user_name, key.access_key_id
                )),
            })
        }
    }
}

/// Mints one key with a generated name and records it (the server's mint).
pub async fn mint_one(
    app: &App,
    store: &Store,
    actor: &str,
    labels: honeytrail_core::Labels,
    memo: String,
) -> Result<Token> {
    let account = app.canary_account().await;
    let key = mint_in_aws(app, store, &account, None, app.config.mint.pack_two_keys).await?;
    record_minted(store, &account, &key, memo, labels, actor).await
}

/// Retires a token: for a minted key, deletes it in AWS first (if that
/// fails the store still says active, and retrying is safe).
pub async fn retire_one(app: &App, store: &Store, token: &Token) -> Result<(Token, bool)> {
    let mut user_deleted = false;
    if token.kind == TokenKind::AwsMinted {
        user_deleted = delete_in_aws(store, &app.canary_account().await, token).await?;
    }
    Ok((store.retire_token(token.id, Utc::now()).await?, user_deleted))
}

/// The registry record of a key just minted in AWS.
fn minted_token(key: &MintedKey, memo: String, labels: honeytrail_core::Labels) -> NewToken {
    NewToken {
        kind: Some(TokenKind::AwsMinted),
        access_key_id: key.access_key_id.clone(),
        secret: Some(key.secret_access_key.clone()),
        iam_user_name: Some(key.user_name.clone()),
        iam_user_arn: Some(key.user_arn.clone()),
        account_id: key.account_id.clone(),
        memo,
        labels,
        created_at: Some(key.created_at),
        ..NewToken::default()
    }
}

fn generated_hop(actor: &str, key: &MintedKey) -> NewHop {
    NewHop {
        description: format!(
            "generated in canary account {} by honeytrail on {}",
            key.account_id.as_deref().unwrap_or("?"),
            hostname()
        ),
        actor: Some(actor.to_string()),
        automatic: true,
        at: key.created_at,
    }
}

async fn list(store: &Store, args: ListArgs) -> Result<ExitCode> {
    let label = match &args.label {
        Some(raw) => {
            let (name, value) = raw.split_once('=').map(|(n, v)| (n, Some(v.to_string()))).unwrap_or((raw, None));
            Some((name.to_string(), value))
        }
        None => None,
    };
    let state = match args.state {
        StateArg::Active => Some(TokenState::Active),
        StateArg::Retired => Some(TokenState::Retired),
        StateArg::All => None,
    };
    let tokens = store.list_tokens(&TokenFilter { state, label, ..Default::default() }).await?;
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
    placements: Vec<honeytrail_store::PlacedToken>,
    custody: Vec<honeytrail_core::CustodyHop>,
}

async fn show(app: &App, store: &Store, args: ShowArgs) -> Result<ExitCode> {
    let token = store.find_token(&args.token).await?;
    let secret = if args.reveal_secret {
        let s = store
            .reveal_secret(token.id)
            .await?
            .ok_or_else(|| anyhow!("honeytrail holds no secret for {}", token.access_key_id))?;
        store
            .add_hop(
                token.id,
                &NewHop {
                    description: format!("secret shown on a terminal on {} (token show --reveal-secret)", hostname()),
                    actor: Some(app.actor()),
                    automatic: true,
                    at: Utc::now(),
                },
            )
            .await?;
        Some(s)
    } else {
        None
    };
    let placements = store
        .placements(&PlacementFilter { token_id: Some(token.id), include_removed: true, ..Default::default() })
        .await?;
    let custody = store.hops(token.id).await?;
    if args.json {
        let shown =
            Shown { token: &token, secret_access_key: secret.as_ref().map(Secret::expose), placements, custody };
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
    if placements.is_empty() {
        println!("  none; add one with `honeytrail placement add {} --host … --path …`", token.access_key_id);
    }
    for p in &placements {
        let removed = p.placement.removed_at.map(|r| format!(" [removed {}]", when(r))).unwrap_or_default();
        println!(
            "  #{} {} ({}){removed}",
            p.placement.id,
            describe::spot_phrase(&p.placement.spot),
            when(p.placement.placed_at)
        );
    }
    println!("\nchain of custody:");
    if custody.is_empty() {
        println!(
            "  none recorded; add hops with `honeytrail custody add {} \"sent by email to …\"`",
            token.access_key_id
        );
    }
    for h in &custody {
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

async fn describe_cmd(store: &Store, args: RefArgs) -> Result<ExitCode> {
    let token = store.find_token(&args.token).await?;
    let d = store.describe_token(&token).await?;
    if args.json {
        return print_json(&DescribedJson {
            access_key_id: token.access_key_id,
            headline: d.headline,
            placements: d.placements,
            custody: d.custody,
        })
        .map(|_| ExitCode::SUCCESS);
    }
    print!("{d}");
    Ok(ExitCode::SUCCESS)
}

/// Deletes a minted key in AWS, and its user once no active token uses it.
async fn delete_in_aws(store: &Store, account: &CanaryAccount, token: &Token) -> Result<bool> {
    let user = token.iam_user_name.as_deref().ok_or_else(|| {
        anyhow!("token #{} was minted but has no IAM user on record; delete its key in AWS by hand", token.id)
    })?;
    account.delete_key(user, &token.access_key_id).await?;
    let others = store
        .list_tokens(&TokenFilter {
            state: Some(TokenState::Active),
            iam_user_name: Some(user.to_string()),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|t| t.id != token.id)
        .count();
    if others > 0 {
        return Ok(false);
    }
    Ok(account.delete_user_if_unused(user).await?)
}

async fn retire(app: &App, store: &Store, args: RefArgs) -> Result<ExitCode> {
    let token = store.find_token(&args.token).await?;
    let was = token.state;
    let (retired, user_deleted) = retire_one(app, store, &token).await?;
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
        (TokenKind::AwsImported, _) => println!(
            "retired {} in honeytrail. It was imported, so honeytrail did not delete it in AWS: deactivate it where it was made{}",
            token.access_key_id,
            token.source.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(app: &App, store: &Store, args: RefArgs) -> Result<ExitCode> {
    let old = store.find_token(&args.token).await?;
    if old.state == TokenState::Retired {
        bail!("{} is retired; rotation replaces an active token", old.access_key_id);
    }
    let account = app.canary_account().await;
    let key = mint_in_aws(app, store, &account, None, app.config.mint.pack_two_keys).await?;
    // Empty labels: the rotation carries the old token's labels over.
    let new = minted_token(&key, old.memo.clone(), Default::default());
    let hop = generated_hop(&app.actor(), &key);
    let token = match store.record_rotation(old.id, &new, &[hop], Utc::now()).await {
        Ok(t) => t,
        Err(e) => {
            let _ = account.delete_key(&key.user_name, &key.access_key_id).await;
            let _ = account.delete_user_if_unused(&key.user_name).await;
            return Err(anyhow!(e)
                .context("could not record the rotation; the new key was deleted again and the old one is untouched"));
        }
    };
    if old.kind == TokenKind::AwsMinted {
        if let Err(e) = delete_in_aws(store, &account, &old).await {
            eprintln!("warning: the old key {} is retired in honeytrail but deleting it in AWS failed: {e:#}. Run `honeytrail token retire {}` to try again", old.access_key_id, old.access_key_id);
        }
    }
    let placements = store.placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() }).await?;
    if args.json {
        return print_json(&token).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "rotated {} → {} (token #{}, IAM user {})",
        old.access_key_id, token.access_key_id, token.id, key.user_name
    );
    if placements.is_empty() {
        println!("no placements to carry over");
    } else {
        println!(
            "{} placement(s) carried over; the bait there still holds the old key. Re-render each:",
            placements.len()
        );
        for p in placements {
            let format = p.placement.spot.format.as_deref().unwrap_or("aws-credentials");
            println!(
                "  honeytrail render {} --format {format} --into {}   # on {}",
                token.access_key_id, p.placement.spot.path, p.placement.spot.host
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
