//! Every `.nix` file in the repository parses with real Nix.

use bifrost_e2e::{repo_nix_files, skip, Tools};

#[test]
fn every_nix_file_parses() {
    let tools = Tools::find();
    let Some(nix) = tools.nix_instantiate else {
        return skip(
            "every_nix_file_parses",
            "nix-instantiate (Debian package nix-bin)",
        );
    };
    let files = repo_nix_files();
    let mut failures = Vec::new();
    for f in &files {
        let out =
            bifrost_e2e::nixrun::output(std::process::Command::new(&nix).arg("--parse").arg(f));
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "files that do not parse:\n{}",
        failures.join("\n")
    );
}
