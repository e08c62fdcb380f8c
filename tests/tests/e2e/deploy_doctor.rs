//! `bifrost doctor --json` on this machine, with the real Nix: the report is
//! valid JSON, every check is there, and the exit status follows `ok`.

use bifrost_e2e::{bifrost_bin, program, skip};
use std::process::Command;

#[test]
fn doctor_json_reports_real_nix_and_exit_status() {
    if program("nix").is_none() {
        return skip(
            "doctor_json_reports_real_nix",
            "nix (Debian package nix-bin)",
        );
    }
    let out_root = tempfile::tempdir().unwrap();
    let run = |features: &str| {
        let o = Command::new(bifrost_bin())
            .args(["doctor", "--json", "--out"])
            .arg(out_root.path())
            .env("NIX_CONFIG", format!("experimental-features = {features}"))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)));
        (o.status.success(), v)
    };
    let (success, v) = run("nix-command flakes");
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "nix",
            "flakes",
            "output-space",
            "kvm",
            "qemu",
            "ovmf",
            "esp",
            "refind-nvram",
            "secure-boot"
        ]
    );
    assert_eq!(v["checks"][0]["status"], "ok", "{v:#}");
    assert_eq!(v["checks"][1]["status"], "ok", "{v:#}");
    assert_eq!(success, v["ok"] == true, "{v:#}");

    // Flakes off: a required check fails, and so does the command.
    let (success, v) = run("nix-command");
    assert_eq!(v["checks"][1]["status"], "fail", "{v:#}");
    assert!(v["checks"][1]["fix"]
        .as_str()
        .unwrap()
        .contains("experimental-features"));
    assert!(!success);
    assert_eq!(v["ok"], false);
}
