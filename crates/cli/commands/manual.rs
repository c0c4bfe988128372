//! `honeytrail completions SHELL` and `honeytrail man`: shell completions
//! and man pages made from the command tree itself, so they never fall
//! behind `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory to write the pages into (made if missing); e.g. /usr/local/share/man/man1
    #[arg(long, default_value = "man")]
    dir: PathBuf,
}

/// Prints the completion script; where each shell looks for it is in the README.
pub fn completions(cmd: &mut clap::Command, args: &CompletionsArgs) -> Result<ExitCode> {
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, cmd, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Writes honeytrail.1 and a page per subcommand, and says how many.
pub fn man(cmd: clap::Command, args: &ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot make {}", args.dir.display()))?;
    clap_mangen::generate_to(cmd, &args.dir)
        .with_context(|| format!("cannot write man pages into {}", args.dir.display()))?;
    let pages = std::fs::read_dir(&args.dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "1")))
        .count();
    eprintln!(
        "wrote {pages} man pages into {} (read one with: man -l {}/honeytrail.1)",
        args.dir.display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
