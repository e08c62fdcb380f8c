use camino::Utf8PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Host settings files (JSON) to validate.
    #[arg(required = true)]
    files: Vec<Utf8PathBuf>,
    /// Print the problems as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let mut bad = false;
    for f in &args.files {
        if let Err(e) = bifrost_core::spec::load_file(f) {
            bad = true;
            eprintln!("{e}");
        }
    }
    let _ = args.json;
    if bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
