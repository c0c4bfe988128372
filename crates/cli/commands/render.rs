//! `honeytrail render`: write a token into a bait file, merging into existing
//! files without clobbering them, and record where it went.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use honeytrail_app::ops::RenderInto;
use honeytrail_core::bait::Format;
use honeytrail_core::describe::spot_phrase;

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
    let ops = app.ops().await?;
    let actor = app.acting();
    let Some(into) = &args.into else {
        let to = format!("to standard output on {}", hostname());
        let text = ops
            .render_text(&actor, &args.token, &args.format, args.profile.as_deref(), args.region.as_deref(), &to)
            .await?;
        print!("{text}");
        std::io::stdout().flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    let placement = if args.no_placement { None } else { Some(args.spot.to_request()?) };
    let written = ops
        .render_into(
            &actor,
            RenderInto {
                key: args.token.clone(),
                format: args.format.clone(),
                profile: args.profile.clone(),
                region: args.region.clone(),
                path: expand_home(into),
                force: args.force,
                host: args.host.clone(),
                placement,
            },
        )
        .await?;
    let what = if written.format.merges() {
        format!("profile/entry {:?}", written.profile)
    } else {
        format!("{} file", written.format)
    };
    eprintln!(
        "{} {what} for {} in {}{}",
        if written.replaced { "replaced" } else { "wrote" },
        written.token.access_key_id,
        written.path.display(),
        written.backup.map(|b| format!(" (previous file kept as {})", b.display())).unwrap_or_default()
    );
    if let Some(p) = written.placement {
        eprintln!("recorded placement #{}: {}", p.id, spot_phrase(&p.spot));
    }
    Ok(ExitCode::SUCCESS)
}
