//! `honeytrail deploy …`: bait placed by automation, from this machine.
//! `snippet` prints what installs and enrols hosts from the server;
//! `installer` prints the script the server serves at /deploy/install.sh.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use honeytrail_app::ops::deploy::{LambdaRequest, MailboxRequest, SnippetRequest};
use honeytrail_app::App;

use super::print_json;

#[derive(Subcommand, Debug)]
pub enum DeployCommand {
    /// A ready-to-paste snippet (cloud-init, ansible, terraform, shell) that installs the agent and enrols hosts
    Snippet(SnippetRequest),
    /// The installer the server serves at /deploy/install.sh, with its SHA-256 and the agent's
    Installer,
    /// Put a honey key into a Lambda function's environment (a backup or export job's key pair), or take it out
    Lambda {
        #[command(flatten)]
        request: LambdaRequest,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Put a message with a honey key into a mailbox folder over IMAP (password on stdin), or take it out
    Mailbox {
        #[command(flatten)]
        request: MailboxRequest,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: DeployCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    match cmd {
        DeployCommand::Snippet(request) => {
            let public = ops.config.serve.public_url();
            if !public.starts_with("https://") {
                eprintln!(
                    "warning: serve.public_url is {public}: agents refuse plain http except on loopback; set it to the https URL hosts reach"
                );
            }
            print!("{}", ops.snippet(&app.acting(), &request).await?.snippet);
        }
        DeployCommand::Installer => {
            let installer = ops.installer().await?;
            eprintln!(
                "installer SHA-256 {}; agent {} SHA-256 {}",
                installer.sha256,
                installer.agent.display(),
                installer.agent_sha256
            );
            print!("{}", installer.script);
        }
        DeployCommand::Lambda { request: r, json } => {
            let done = ops.lambda_bait(&app.acting(), &r).await?;
            if json {
                print_json(&done)?;
            } else if r.remove {
                println!(
                    "removed {} and {} ({}) from {}{}",
                    done.variables.0,
                    done.variables.1,
                    done.access_key_id,
                    done.function_arn,
                    if done.retired { "; the key is retired" } else { "" }
                );
            } else {
                println!(
                    "placed {} in {} as {} and {} (placement #{})",
                    done.access_key_id, done.function_arn, done.variables.0, done.variables.1, done.placement.id
                );
            }
        }
        DeployCommand::Mailbox { request: mut r, json } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("cannot read the IMAP password from standard input")?;
            r.password = password.trim_end_matches(['\r', '\n']).to_string();
            if r.password.is_empty() {
                anyhow::bail!("give the IMAP password on standard input (e.g. from your password manager's CLI)");
            }
            let done = ops.mailbox_bait(&app.acting(), &r).await?;
            if json {
                print_json(&done)?;
            } else if r.remove {
                println!(
                    "deleted message {} ({}){}",
                    done.message_id,
                    done.access_key_id,
                    if done.retired { "; the key is retired" } else { "" }
                );
            } else {
                println!(
                    "placed {} as message {} (placement #{})",
                    done.access_key_id, done.message_id, done.placement.id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
