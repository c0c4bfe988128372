//! `honeytrail render`: write a token into a bait file, merging into existing
//! files without clobbering them, and record where it went.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::Args;
use honeytrail_core::bait::{self, BaitInput, Format};
use honeytrail_core::describe::spot_phrase;
use honeytrail_core::TokenState;
use honeytrail_store::NewHop;

use super::SpotArgs;
use honeytrail_app::context::hostname;
use honeytrail_app::App;

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// aws-credentials, aws-config, dotenv, shell, python, javascript, go, java,
    /// tfvars, k8s-secret, docker-compose, github-actions
    #[arg(long, short)]
    format: String,
    /// Profile / environment name the bait talks about [default: render.profile]
    #[arg(long)]
    profile: Option<String>,
    /// Region named in the bait [default: render.region]
    #[arg(long)]
    region: Option<String>,
    /// Merge into (or create) this file and record the placement; without it the bait is printed
    #[arg(long, value_name = "FILE")]
    into: Option<PathBuf>,
    /// Replace a profile / variables / file of the same name (a backup is kept)
    #[arg(long)]
    force: bool,
    /// Host recorded for the placement [default: this machine's name]
    #[arg(long)]
    host: Option<String>,
    /// Do not record a placement (the custody hop is still recorded)
    #[arg(long)]
    no_placement: bool,
    #[command(flatten)]
    spot: SpotArgs,
}

/// Expands a leading `~/` to the home directory.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// `render` against a running server: the bait is printed (the server
/// records the custody hop); writing into a file stays a local job.
pub async fn remote(r: &super::remote::Remote, args: RenderArgs) -> Result<ExitCode> {
    if args.into.is_some() || args.profile.is_some() || args.region.is_some() {
        bail!("with --server, render prints the bait with the server's profile and region; --into, --profile and --region work against a local store only");
    }
    let format: Format = args.format.parse()?;
    let path = format!("/tokens/{}/bait/{}", super::remote::q(&args.token), format.name());
    print!("{}", r.get_text(&path).await?);
    std::io::stdout().flush()?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(app: &App, args: RenderArgs) -> Result<ExitCode> {
    let format: Format = args.format.parse()?;
    let store = app.store().await?;
    let token = store.find_token(&args.token).await?;
    if token.state == TokenState::Retired {
        bail!("{} is retired (its key no longer works), so bait made from it would never fire; mint or rotate to get an active key", token.access_key_id);
    }
    let secret = store.reveal_secret(token.id).await?.ok_or_else(|| {
        anyhow!(
            "honeytrail holds no secret for {} (it was registered by key ID only), and bait needs one; import it again with --secret-stdin, or write the bait on the host where the key was made",
            token.access_key_id
        )
    })?;
    let profile = args.profile.clone().unwrap_or_else(|| app.config.render.profile.clone());
    let region = args.region.clone().unwrap_or_else(|| app.config.render.region.clone());
    let input = BaitInput {
        access_key_id: &token.access_key_id,
        secret_access_key: secret.expose(),
        profile: &profile,
        region: &region,
    };
    let here = hostname();

    let Some(into) = &args.into else {
        print!("{}", bait::render(format, &input));
        std::io::stdout().flush()?;
        store
            .add_hop(
                token.id,
                &NewHop {
                    description: format!("rendered as {format} to standard output on {here}"),
                    actor: Some(app.actor()),
                    automatic: true,
                    at: Utc::now(),
                },
            )
            .await?;
        return Ok(ExitCode::SUCCESS);
    };

    let path = expand_home(into);
    let path = std::path::absolute(&path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    };
    let merged = bait::merge(format, existing.as_deref().unwrap_or(""), &input, args.force)
        .with_context(|| format!("not writing {}", path.display()))?;
    let backup = match &existing {
        Some(text) => Some(write_backup(&path, text)?),
        None => None,
    };
    write_atomically(&path, &merged.content)?;

    let host = args.host.clone().unwrap_or_else(|| here.clone());
    store
        .add_hop(
            token.id,
            &NewHop {
                description: format!("written to {} on {host} by honeytrail render ({format})", path.display()),
                actor: Some(app.actor()),
                automatic: true,
                at: Utc::now(),
            },
        )
        .await?;
    let placement = if args.no_placement {
        None
    } else {
        let spot = args.spot.to_spot(host, path.display().to_string(), Some(format.name().to_string()), app.actor())?;
        Some(store.add_placement(token.id, &spot, Utc::now()).await?)
    };

    let what = if format.merges() { format!("profile/entry {profile:?}") } else { format!("{format} file") };
    eprintln!(
        "{} {what} for {} in {}{}",
        if merged.replaced { "replaced" } else { "wrote" },
        token.access_key_id,
        path.display(),
        backup.map(|b| format!(" (previous file kept as {})", b.display())).unwrap_or_default()
    );
    if let Some(p) = placement {
        eprintln!("recorded placement #{}: {}", p.id, spot_phrase(&p.spot));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_backup(path: &Path, text: &str) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let backup = PathBuf::from(format!("{}.honeytrail-backup-{stamp}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&backup)
        .with_context(|| format!("cannot create the backup {}", backup.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(backup)
}

/// Replaces `path` with `content` via a temporary file and a rename, keeping
/// the old file's permissions (new files are private: 0600).
fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let dir = path.parent().ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    let tmp = dir.join(format!(
        ".{}.honeytrail-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("bait"),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
