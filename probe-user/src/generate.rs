//! Man pages and shell completions from the command line's own definition (clap), for the
//! Debian package (`cargo xtask dist`): `mhpscope generate man DIR`, `mhpscope generate
//! completions SHELL [DIR]`. It is for packagers, not users: `main` hands it over before parsing
//! the command line proper, so that neither the pages nor the completions offer it.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use clap_complete::Shell;

#[derive(Parser)]
#[command(
    name = "generate",
    bin_name = "mhpscope generate",
    about = "Man pages and shell completions, for packaging"
)]
struct Generate {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
pub enum What {
    /// One roff page per command: mhpscope.1 and mhpscope-SUBCOMMAND.1 (section 1).
    Man {
        /// Directory to write them into (created if missing).
        dir: PathBuf,
    },
    /// The completion script of one shell: `mhpscope.bash`, `_mhpscope` (zsh) or
    /// `mhpscope.fish`, or to stdout without DIR.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
        /// Directory to write the script into (created if missing); stdout when absent.
        dir: Option<PathBuf>,
    },
}

/// `mhpscope generate ...` when that is the command line (its exit status), else None.
/// `cli` gives the whole command line (`Cli::command` in the binary).
pub fn from_args(cli: impl FnOnce() -> clap::Command) -> Option<ExitCode> {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new("generate")) {
        return None;
    }
    // "generate" stands where clap expects the program's name.
    let args = Generate::parse_from(std::env::args_os().skip(1));
    Some(match run(args.what, cli()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mhpscope: error: {e:#}");
            ExitCode::FAILURE
        }
    })
}

/// `cmd` is the whole command line (`Cli::command()` in the binary).
pub fn run(what: What, cmd: clap::Command) -> Result<()> {
    match what {
        What::Man { dir } => {
            for page in man(cmd, &dir)? {
                println!("{}", page.display());
            }
            Ok(())
        }
        What::Completions {
            shell,
            dir: Some(dir),
        } => {
            println!("{}", completions(cmd, shell, &dir)?.display());
            Ok(())
        }
        What::Completions { shell, dir: None } => {
            let mut cmd = cmd;
            clap_complete::generate(shell, &mut cmd, "mhpscope", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Writes the pages of `cmd` and of each visible subcommand into `dir`; returns their paths.
pub fn man(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}

/// Writes the completion script of `shell` into `dir`; returns its path.
pub fn completions(mut cmd: clap::Command, shell: Shell, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_complete::generate_to(shell, &mut cmd, "mhpscope", dir)
        .with_context(|| format!("writing the {shell} completions into {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cli() -> Command {
        Command::new("mhpscope")
            .version("1.2.3")
            .about("Observe")
            .arg(
                Arg::new("verbose")
                    .short('v')
                    .long("verbose")
                    .global(true)
                    .action(clap::ArgAction::Count),
            )
            .subcommand(Command::new("report").about("Print tables"))
            .subcommand(Command::new("hidden").hide(true))
    }

    #[test]
    fn a_page_per_visible_command_and_none_for_hidden_ones() {
        let dir = std::env::temp_dir().join(format!("mhpscope-man-{}", std::process::id()));
        let pages = man(cli(), &dir).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["mhpscope-report.1", "mhpscope.1"]);
        let sub = std::fs::read_to_string(dir.join("mhpscope-report.1")).unwrap();
        assert!(
            sub.contains("\\-\\-verbose"),
            "global options reach subcommand pages:\n{sub}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completion_scripts_have_the_names_shells_look_for() {
        let dir = std::env::temp_dir().join(format!("mhpscope-compl-{}", std::process::id()));
        for (shell, name) in [
            (Shell::Bash, "mhpscope.bash"),
            (Shell::Zsh, "_mhpscope"),
            (Shell::Fish, "mhpscope.fish"),
        ] {
            assert_eq!(completions(cli(), shell, &dir).unwrap(), dir.join(name));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
