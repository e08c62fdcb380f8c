use bifrost_core::spec::check;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Exit status when any file is invalid or unreadable.
const INVALID: u8 = 2;

#[derive(clap::Args)]
#[command(after_help = "\
Exit status: 0 when every file is valid (warnings included), 2 when any file is
invalid or unreadable.

Each problem prints as `FILE: PATH: MESSAGE`, where PATH is the JSON path of the
offending value (such as `storage.subvolumes[2].mountPoint`) and MESSAGE says
what would fix it. A warning (a valid setting that does not protect what it
seems to, such as a TPM key bound to PCR 7 without Secure Boot) prints as
`FILE: PATH: warning: MESSAGE` and does not change the exit status. With
--json, stdout holds one JSON array of {\"file\", \"path\", \"message\",
\"severity\"} objects, severity being \"error\" or \"warning\" (empty when all
is well).")]
pub struct Args {
    /// Host settings files (JSON) to validate; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<Utf8PathBuf>,
    /// Print the problems as a JSON array, for editors and scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> super::Outcome {
    let report = check::check_files(&args.files);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.problems())?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INVALID)
    })
}
