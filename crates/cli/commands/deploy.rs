//! `honeytrail deploy …`: bait placed by automation, from this machine.
//! `snippet` prints what installs and enrols hosts from the server;
//! `installer` prints the script the server serves at /deploy/install.sh.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use honeytrail_app::ops::deploy::{LambdaRequest, MailboxRequest};
use honeytrail_app::App;
use honeytrail_core::snippet::{SnippetKind, DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME};

use super::print_json;

#[derive(Subcommand, Debug)]
pub enum DeployCommand {
    /// A ready-to-paste snippet (cloud-init, ansible, terraform, shell) that installs the agent and enrols hosts
    Snippet {
        /// cloud-init, ansible, terraform or shell
        kind: String,
        /// The SSM Parameter Store name (SecureString) holding the enrolment secret; hosts read it at boot
        #[arg(long, default_value = DEFAULT_SECRET_NAME)]
        secret_name: String,
        /// The agent's service, binary and state directory name on hosts (must not say what it is)
        #[arg(long, default_value = DEFAULT_SERVICE_NAME)]
        service_name: String,
    },
    /// The installer the server serves at /deploy/install.sh, with its SHA-256 and the agent's
    Installer,
    /// Put a honey key into a Lambda function's environment (a backup or export job's key pair), or take it out
    Lambda {
        /// The function's name or ARN
        function: String,
        #[arg(long)]
        region: Option<String>,
        /// The account the function must be in (checked against the credentials before anything changes)
        #[arg(long)]
        account: Option<String>,
        /// The AWS profile for the function's account (default: the standard credential chain)
        #[arg(long)]
        profile: Option<String>,
        /// An active key to place (default: a fresh one is minted)
        #[arg(long)]
        key: Option<String>,
        /// Take honeytrail's variables out again (every other variable unchanged); the key is retired
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        json: bool,
    },
    /// Put a message with a honey key into a mailbox folder over IMAP (password on stdin), or take it out
    Mailbox {
        /// imaps://host[:port]
        #[arg(long)]
        imap_url: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// The mailbox's address, when the IMAP user is not one
        #[arg(long)]
        address: Option<String>,
        /// PEM certificates of the CA that signed the IMAP server's certificate
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
        /// An active key to place (default: a fresh one is minted)
        #[arg(long)]
        key: Option<String>,
        /// Delete the message honeytrail placed there (that message only); the key is retired
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: DeployCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    match cmd {
        DeployCommand::Snippet { kind, secret_name, service_name } => {
            let kind = SnippetKind::parse(&kind).map_err(honeytrail_app::OpError::from)?;
            let public = ops.config.serve.public_url();
            if !public.starts_with("https://") {
                eprintln!(
                    "warning: serve.public_url is {public}: agents refuse plain http except on loopback; set it to the https URL hosts reach"
                );
            }
            print!("{}", ops.snippet(&app.acting(), kind, &secret_name, &service_name).await?);
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
        DeployCommand::Lambda { function, region, account, profile, key, remove, json } => {
            let r = LambdaRequest { function, region, account, profile, key };
            let done = if remove {
                ops.remove_lambda(&app.acting(), &r).await?
            } else {
                ops.deploy_lambda(&app.acting(), &r).await?
            };
            if json {
                print_json(&done.json())?;
            } else if remove {
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
        DeployCommand::Mailbox { imap_url, user, folder, address, ca_file, key, remove, json } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("cannot read the IMAP password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                anyhow::bail!("give the IMAP password on standard input (e.g. from your password manager's CLI)");
            }
            let r = MailboxRequest { imap_url, user, password, folder, address, ca_file, ca_pem: None, key };
            let done = if remove {
                ops.remove_mailbox(&app.acting(), &r).await?
            } else {
                ops.deploy_mailbox(&app.acting(), &r).await?
            };
            if json {
                print_json(&done.json())?;
            } else if remove {
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
