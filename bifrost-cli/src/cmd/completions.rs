//! `bifrost completions`: shell completions and the man page, generated from
//! the clap definitions (the flake package installs them).

use camino::Utf8PathBuf;
use clap::CommandFactory;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print bash completions (install as bash-completion/completions/bifrost).
    Bash,
    /// Print zsh completions (install as _bifrost on $fpath).
    Zsh,
    /// Print fish completions (install as fish/vendor_completions.d/bifrost.fish).
    Fish,
    /// Print elvish completions.
    Elvish,
    /// Print PowerShell completions.
    Powershell,
    /// Print the man page bifrost(1) in roff; with --dir, write bifrost.1 and
    /// one page per subcommand (bifrost-build.1, …) there.
    Man {
        /// Folder to write all pages into.
        #[arg(long, value_name = "DIR")]
        dir: Option<Utf8PathBuf>,
    },
}

pub fn run(c: Command) -> super::Outcome {
    let mut cmd = crate::Cli::command();
    let shell = match c {
        Command::Bash => clap_complete::Shell::Bash,
        Command::Zsh => clap_complete::Shell::Zsh,
        Command::Fish => clap_complete::Shell::Fish,
        Command::Elvish => clap_complete::Shell::Elvish,
        Command::Powershell => clap_complete::Shell::PowerShell,
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(cmd, &dir))
                .map_err(|e| format!("{dir}: writing man pages: {e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man { dir: None } => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout().lock())
                .map_err(|e| format!("writing the man page: {e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    clap_complete::generate(shell, &mut cmd, "bifrost", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
