//! `honeytrail template …`: which bait goes where on an enrolled host.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::App;
use honeytrail_core::template::{parse_mode, PlacementTemplate};

use super::{print_json, print_table};

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Add a placement template (or replace the one of that name)
    Add {
        /// The placement template's name (`template list`)
        name: String,
        /// The bait format: aws-credentials, aws-config, dotenv, shell, …
        #[arg(long)]
        format: String,
        /// An absolute path, or ~/… for the same file in every login user's home
        #[arg(long)]
        path: String,
        /// The profile or environment name the bait uses
        #[arg(long)]
        profile: Option<String>,
        /// The file's owner (default: the home's user, or root)
        #[arg(long)]
        owner: Option<String>,
        /// The file's mode, octal
        #[arg(long, default_value = "600")]
        mode: String,
        /// What the host gets: key (a long-lived access key) or session
        /// (STS session credentials of the honey role, refreshed before they expire)
        #[arg(long, default_value = "key")]
        credential: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// List placement templates
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show one template
    Show {
        /// The placement template's name (`template list`)
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove a template
    Remove {
        /// The placement template's name (`template list`)
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

fn row(t: &PlacementTemplate) -> Vec<String> {
    vec![
        t.name.clone(),
        t.format.clone(),
        t.path.clone(),
        t.profile.clone().unwrap_or_default(),
        t.owner.clone().unwrap_or_else(|| if t.per_user() { "(the home's user)".into() } else { "root".into() }),
        format!("{:o}", t.mode),
        t.credential.as_str().to_string(),
    ]
}

const HEADER: [&str; 7] = ["NAME", "FORMAT", "PATH", "PROFILE", "OWNER", "MODE", "CREDENTIAL"];

pub async fn run(app: &App, cmd: TemplateCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        TemplateCommand::Add { name, format, path, profile, owner, mode, credential, out } => {
            let credential = credential.parse().map_err(|e: honeytrail_core::Invalid| anyhow::anyhow!("--{}", e.0))?;
            let t = PlacementTemplate { name, format, path, profile, owner, mode: parse_mode(&mode)?, credential };
            let t = ops.put_template(&actor, t).await?;
            return out.print(&t, |t| format!("template {}: {} at {}", t.name, t.format, t.path));
        }
        TemplateCommand::List { json } => {
            let all = ops.templates(&actor).await?;
            if json {
                return print_json(&all).map(|_| ExitCode::SUCCESS);
            }
            print_table(&HEADER, &all.iter().map(row).collect::<Vec<_>>());
        }
        TemplateCommand::Show { name, json } => {
            let t = ops.template(&actor, &name).await?;
            if json {
                return print_json(&t).map(|_| ExitCode::SUCCESS);
            }
            print_table(&HEADER, &[row(&t)]);
        }
        TemplateCommand::Remove { name, out } => {
            ops.remove_template(&actor, &name).await?;
            return out.print(&serde_json::json!({"removed": name}), |_| format!("template {name} removed"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
