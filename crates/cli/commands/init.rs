use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use honeytrail_app::config::DEFAULT_CONFIG;
use honeytrail_app::context::write_private;
use honeytrail_app::App;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Overwrite an existing configuration file (the database and data key are kept)
    #[arg(long)]
    force: bool,
}

pub async fn run(app: &App, args: InitArgs) -> Result<ExitCode> {
    let dir = app.config.data_dir();
    honeytrail_app::context::private_dir(dir)?;
    let config_path = app.config.source.clone().unwrap_or_else(|| dir.join("honeytrail.toml"));
    if config_path.exists() && !args.force {
        println!("configuration  {} (exists; kept — pass --force to rewrite it)", config_path.display());
    } else {
        if config_path.exists() {
            std::fs::remove_file(&config_path).with_context(|| format!("cannot replace {}", config_path.display()))?;
        }
        write_private(&config_path, DEFAULT_CONFIG)?;
        println!("configuration  {} (written)", config_path.display());
    }
    let key_path = app.config.secret_key_path();
    let key_existed = key_path.exists() || app.config.secret_key.is_some();
    let version = app.init_database().await?;
    if !key_existed && !key_path.exists() {
        bail!("the data key {} was not created", key_path.display());
    }
    println!("database       {} (schema version {version})", app.database_shown());
    match &app.config.secret_key {
        Some(_) => println!("data key       from HONEYTRAIL_SECRET_KEY"),
        None => {
            println!("data key       {}{}", key_path.display(), if key_existed { "" } else { " (created; back it up)" })
        }
    }
    println!("\nNext: mint a key with `honeytrail token mint aws` (needs the canary account's credentials),");
    println!("or register one made elsewhere with `honeytrail token import aws --access-key-id AKIA…`.");
    Ok(ExitCode::SUCCESS)
}
