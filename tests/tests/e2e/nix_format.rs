//! Every `.nix` file is formatted as alejandra formats it, checked with
//! alejandra itself (its library crate), so CI holds the line that
//! `nix fmt` / the flake's `nix-format` check draw, without needing nixpkgs.

#[test]
fn every_nix_file_is_alejandra_formatted() {
    let files = bifrost_e2e::repo_nix_files();
    assert!(
        files.len() > 5,
        "expected the repo's .nix files, found {files:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let (status, out) = alejandra::format::in_memory(f.display().to_string(), src.clone());
        match status {
            alejandra::format::Status::Error(e) => bad.push(format!("{}: {e}", f.display())),
            alejandra::format::Status::Changed(_) if out != src => {
                bad.push(format!("{}: not formatted (run `nix fmt`)", f.display()))
            }
            alejandra::format::Status::Changed(_) => {}
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_check_catches_an_unformatted_file() {
    let src = "{a=1;b =  [1 2];}\n".to_string();
    let (_, out) = alejandra::format::in_memory("x.nix".into(), src.clone());
    assert_ne!(out, src, "alejandra must reformat a squashed attribute set");
}
