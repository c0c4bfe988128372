//! `honeytrail channel …` and `honeytrail alert test`: the places alerts go.
//!
//! `channel add` has one subcommand per channel kind, made at run time from
//! the kind's settings (`honeytrail_core::channel::KindSpec`): a new kind
//! in the alert crate's registry is offered here with no change to this file.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Subcommand};
use honeytrail_app::ops::alerting::channel_kinds;
use honeytrail_app::ops::{ChannelRequest, TestTarget};
use honeytrail_app::App;
use honeytrail_core::channel::{config_json, FieldValue, KindSpec, Secrecy};

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add a channel: one subcommand per kind, each with that kind's settings
    #[command(subcommand)]
    Add(AddChannel),
    /// List channels (their configuration stays sealed)
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send a clearly marked test alert through a channel now
    Test {
        /// The channel's name (`channel list`)
        name: String,
    },
}

/// `channel add KIND NAME …`: a kind and the settings given on the command
/// line, as text; secrets are read from standard input when it runs.
#[derive(Debug)]
pub struct AddChannel {
    kind: &'static KindSpec,
    /// The channel's name (`channel list`)
    name: String,
    given: Vec<(&'static str, Vec<String>)>,
    /// Settings the flag asked to read from standard input (`--secret-stdin`).
    from_stdin: Vec<&'static str>,
    /// Print the added channel as JSON.
    json: bool,
}

/// The flag that asks for a setting on standard input: `--<flag>-stdin`.
fn stdin_flag(flag: &str) -> &'static str {
    // Made once per run, for clap's 'static names.
    Box::leak(format!("{flag}-stdin").into_boxed_str())
}

/// The subcommand of one kind, from its settings.
fn kind_command(spec: &'static KindSpec) -> Command {
    let mut cmd = Command::new(spec.name)
        .about(spec.summary)
        .arg(Arg::new("name").required(true).help("The channel's name, as routes and `channel test` name it"))
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the added channel as JSON instead of a sentence"),
        );
    for f in spec.fields {
        let arg = match f.secret {
            // Read from standard input, never a flag (shell history, ps).
            Secrecy::Stdin | Secrecy::StdinWith { .. } => continue,
            Secrecy::StdinOnFlag => {
                let flag = stdin_flag(f.flag);
                cmd = cmd.arg(Arg::new(flag).long(flag).action(ArgAction::SetTrue).help(f.help));
                continue;
            }
            Secrecy::Plain => Arg::new(f.key).long(f.flag).help(f.help),
        };
        let arg = match f.value {
            FieldValue::Flag => arg.action(ArgAction::SetTrue),
            FieldValue::List => arg.action(ArgAction::Append).required(f.required),
            FieldValue::Map => arg.action(ArgAction::Append).value_name("NAME=VALUE"),
            FieldValue::Choice { values } => arg.value_parser(PossibleValuesParser::new(values)).required(f.required),
            FieldValue::Number { min, max } => {
                arg.value_parser(clap::value_parser!(u32).range(i64::from(min)..=i64::from(max))).required(f.required)
            }
            // A path as the global --ca-file takes one: the same argument
            // where both are named so.
            FieldValue::Path => arg.value_parser(clap::value_parser!(std::path::PathBuf)).required(f.required),
            FieldValue::Text => arg.required(f.required),
        };
        cmd = cmd.arg(match f.default {
            Some(d) if f.value != FieldValue::Flag => arg.default_value(d),
            _ => arg,
        });
    }
    cmd
}

impl FromArgMatches for AddChannel {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let missing = || clap::Error::new(clap::error::ErrorKind::MissingSubcommand);
        let (kind, sub) = matches.subcommand().ok_or_else(missing)?;
        let spec = channel_kinds().into_iter().find(|k| k.name == kind).ok_or_else(missing)?;
        let name = sub.get_one::<String>("name").cloned().ok_or_else(missing)?;
        let mut given = Vec::new();
        let mut from_stdin = Vec::new();
        for f in spec.fields {
            match (f.secret, f.value) {
                (Secrecy::Stdin, _) => from_stdin.push(f.key),
                (Secrecy::StdinOnFlag, _) if sub.get_flag(stdin_flag(f.flag)) => from_stdin.push(f.key),
                (Secrecy::StdinOnFlag, _) => {}
                (Secrecy::StdinWith { key }, _) => {
                    if sub.contains_id(key) && sub.value_source(key) == Some(clap::parser::ValueSource::CommandLine) {
                        from_stdin.push(f.key);
                    }
                }
                (Secrecy::Plain, FieldValue::Flag) => {
                    if sub.get_flag(f.key) {
                        given.push((f.key, vec!["true".to_string()]));
                    }
                }
                (Secrecy::Plain, _) => {
                    let values: Vec<String> =
                        sub.get_raw(f.key).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
                    given.push((f.key, values));
                }
            }
        }
        Ok(AddChannel { kind: spec, name, given, from_stdin, json: sub.get_flag("json") })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for AddChannel {
    fn augment_subcommands(cmd: Command) -> Command {
        channel_kinds().into_iter().fold(cmd, |cmd, spec| cmd.subcommand(kind_command(spec)))
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        channel_kinds().iter().any(|k| k.name == name)
    }
}

impl AddChannel {
    /// The request: secrets read from standard input, files made absolute.
    fn request(self) -> Result<ChannelRequest> {
        let mut given = self.given;
        for key in &self.from_stdin {
            given.push((key, vec![super::token::read_secret_stdin()?.expose().to_string()]));
        }
        for (key, values) in &mut given {
            if self.kind.field(key).is_some_and(|f| f.value == FieldValue::Path) {
                for v in values.iter_mut() {
                    *v = std::path::absolute(&*v).with_context(|| format!("cannot resolve {v}"))?.display().to_string();
                }
            }
        }
        let config = config_json(self.kind, &given)?;
        Ok(ChannelRequest { name: self.name, kind: self.kind.name.to_string(), config })
    }
}

pub async fn channel(app: &App, cmd: ChannelCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        ChannelCommand::Add(add) => {
            let sealed = add.kind.fields.iter().any(|f| f.is_secret());
            let out = super::JsonOut { json: add.json };
            let added = ops.add_channel(&actor, &add.request()?).await?;
            return out.print(&added, |added| {
                format!(
                    "channel {:?} added ({}){}",
                    added.channel.name,
                    added.summary,
                    if sealed { "; its secrets are stored sealed" } else { "" }
                )
            });
        }
        ChannelCommand::List { json } => {
            let channels = ops.channels(&actor).await?;
            if json {
                return print_json(&channels).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = channels
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.kind.clone(),
                        if c.enabled { "enabled".into() } else { "disabled".into() },
                        when(c.created_at),
                    ]
                })
                .collect();
            print_table(&["NAME", "KIND", "STATE", "ADDED"], &rows);
        }
        ChannelCommand::Test { name } => return send_test(app, TestTarget::Channel(name)).await,
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum AlertCommand {
    /// Send a clearly marked test alert through a channel, a route's channels, or every enabled channel
    Test(AlertTestArgs),
}

#[derive(Args, Debug)]
pub struct AlertTestArgs {
    /// Through this channel
    #[arg(long, conflicts_with = "route")]
    channel: Option<String>,
    /// Through every channel of this route
    #[arg(long)]
    route: Option<String>,
}

pub async fn alert(app: &App, cmd: AlertCommand) -> Result<ExitCode> {
    let AlertCommand::Test(a) = cmd;
    let target = match (a.channel, a.route) {
        (Some(name), _) => TestTarget::Channel(name),
        (None, Some(route)) => TestTarget::Route(route),
        (None, None) => TestTarget::Enabled,
    };
    send_test(app, target).await
}

/// Sends the test alert through each chosen channel; fails if any failed.
async fn send_test(app: &App, target: TestTarget) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let outcomes = ops.test_alerts(&app.acting(), &target).await?;
    let mut failed = 0;
    for (c, outcome) in &outcomes {
        match outcome {
            Ok(()) => println!("test alert delivered through {:?} ({})", c.name, c.kind),
            Err(why) => {
                failed += 1;
                eprintln!("test alert through {:?} ({}) failed: {why}", c.name, c.kind);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} test alert(s) failed", outcomes.len());
    }
    Ok(ExitCode::SUCCESS)
}
