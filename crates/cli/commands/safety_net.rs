//! `honeytrail safety-net`: catch calls CloudTrail never logs (see
//! `honeytrail_app::sources::safety_net`).

use std::process::ExitCode;

use anyhow::Result;
use chrono::Duration;
use clap::Args;
use honeytrail_app::config::SafetyNetMethod;
use honeytrail_app::sources::safety_net::SafetyNet;
use honeytrail_app::sources::{Sink, Source};
use honeytrail_app::App;

use super::ingest::print_incidents;

#[derive(Args, Debug)]
pub struct SafetyNetArgs {
    /// Minutes to wait for CloudTrail before calling a use unlogged [default: detect.safety_net_grace_minutes]
    #[arg(long)]
    grace_minutes: Option<u32>,
    /// Where to learn of key uses; repeat for both [default: detect.safety_net_methods]
    #[arg(long = "method", value_enum)]
    methods: Vec<SafetyNetMethod>,
}

pub async fn run(app: &App, args: SafetyNetArgs) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let grace = Duration::minutes(args.grace_minutes.unwrap_or(app.config.detect.safety_net_grace_minutes) as i64);
    let mut net = match args.methods.is_empty() {
        true => SafetyNet::new(&ops, grace),
        false => SafetyNet::with_methods(&ops, grace, args.methods),
    };
    let mut sink = Sink::new(&ops);
    net.pass(&mut sink).await?;
    print_incidents(&ops, &sink.take_touched()).await?;
    eprintln!(
        "safety net ({}): checked {} minted key(s), {} credential report(s) read; {} unlogged use(s) raised",
        net.methods(),
        net.checked,
        net.reports,
        net.raised
    );
    for f in &net.failures {
        eprintln!("warning: could not check {f}");
    }
    Ok(if net.failures.is_empty() || net.checked > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
