//! Every `.nix` file in the repository parses with real Nix.

use bifrost_e2e::{skip, Tools};
use std::path::{Path, PathBuf};

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                nix_files(&p, out);
            }
        } else if name.ends_with(".nix") {
            out.push(p);
        }
    }
}

#[test]
fn every_nix_file_parses() {
    let tools = Tools::find();
    let Some(nix) = tools.nix_instantiate else {
        return skip(
            "every_nix_file_parses",
            "nix-instantiate (Debian package nix-bin)",
        );
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    nix_files(root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("flake.nix")),
        "flake.nix not found under {}",
        root.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        let out = std::process::Command::new(&nix)
            .arg("--parse")
            .arg(f)
            .output()
            .unwrap();
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
