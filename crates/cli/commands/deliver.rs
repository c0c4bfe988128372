//! Alert delivery: `honeytrail deliver`, the dispatcher inside `serve`, and
//! `honeytrail delivery …`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::Delivery;
use honeytrail_app::App;
use serde_json::json;

use super::{print_json, print_table};

#[derive(Subcommand, Debug)]
pub enum DeliveryCommand {
    /// List deliveries: dead-lettered ones by default
    List {
        /// Which deliveries: pending, dead or delivered
        #[arg(long, default_value = "dead")]
        state: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Put a dead-lettered delivery back in line
    Retry {
        /// The delivery's number (`delivery list`)
        id: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    /// Deliver what is due now and stop, instead of running until interrupted
    #[arg(long)]
    once: bool,
}

pub async fn deliver(app: &App, args: DeliverArgs) -> Result<ExitCode> {
    let ops = app.ops().await?;
    if !args.once {
        eprintln!("delivering alerts until interrupted");
        tokio::select! {
            r = ops.run_dispatcher(None) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pass = ops.deliver_due().await?;
    eprintln!("delivered {}, retrying later {}, dead-lettered {}", pass.delivered, pass.retrying, pass.dead);
    Ok(ExitCode::SUCCESS)
}

/// The delivery commands against a running server.
pub async fn remote(r: &super::remote::Remote, cmd: DeliveryCommand) -> Result<ExitCode> {
    match cmd {
        DeliveryCommand::List { state, json } => {
            let path = format!("/deliveries?state={}", super::remote::q(&state));
            let list: Vec<Delivery> = serde_json::from_value(serde_json::Value::Array(r.get_all(&path).await?))?;
            print_deliveries(&list, json)
        }
        DeliveryCommand::Retry { id, out } => {
            let d = r.post(&format!("/deliveries/{id}/retry"), &json!({})).await?;
            out.print(&d, |_| format!("delivery #{id} is pending again"))
        }
    }
}

pub async fn delivery(app: &App, cmd: DeliveryCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        DeliveryCommand::List { state, json } => {
            let list: Vec<Delivery> = ops.deliveries(&actor, &state).await?;
            print_deliveries(&list, json)
        }
        DeliveryCommand::Retry { id, out } => {
            let d = ops.retry_delivery(&actor, id).await?;
            out.print(&d, |d| {
                format!(
                    "delivery #{} is pending again; the dispatcher (serve or `honeytrail deliver`) sends it next",
                    d.id
                )
            })
        }
    }
}

fn print_deliveries(list: &[Delivery], json: bool) -> Result<ExitCode> {
    if json {
        return print_json(&list).map(|_| ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                format!("#{}", d.id),
                format!("incident #{}", d.incident_id),
                d.alert_kind.clone(),
                d.channel.clone(),
                d.attempts.to_string(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["ID", "INCIDENT", "ALERT", "CHANNEL", "ATTEMPTS", "LAST ERROR"], &rows);
    Ok(ExitCode::SUCCESS)
}
