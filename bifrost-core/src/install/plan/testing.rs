//! A host and a request for the phases' unit tests.

use super::{Mode, PlanRequest};
use crate::spec::{HostSettings, Settings};

/// tests/data/install-host.json: two users (alice the administrator),
/// NixOS, shared and Kinoite subvolumes, Kinoite booted directly.
pub fn settings() -> Settings {
    changed(|_| {})
}

/// The test host with `change` made to it, validated again.
pub fn changed(change: impl FnOnce(&mut HostSettings)) -> Settings {
    let mut s: HostSettings =
        serde_json::from_str(include_str!("../../../../tests/data/install-host.json"))
            .expect("the test host parses");
    change(&mut s);
    crate::spec::validated(s).expect("the changed test host is valid")
}

pub fn request(mode: Mode) -> PlanRequest {
    PlanRequest {
        host: "install-test".into(),
        flake: "/src/flake".into(),
        disk: "/dev/nvme0n1".into(),
        mode,
        target: "/mnt".into(),
        work_dir: "/run/bifrost".into(),
        esp_device: None,
        luks_device: None,
        kinoite_boot_device: None,
        refind_efi: Some("/refind/refind_x64.efi".into()),
        storage_only: false,
        settings_file: "/src/flake/hosts/install-test/host.json".into(),
        nvram: true,
        sb_keys: None,
    }
}

/// The ids of `steps`, in order.
pub fn ids(steps: &[super::Step]) -> Vec<&str> {
    steps.iter().map(|s| s.id.as_str()).collect()
}

/// The command of step `id`.
pub fn argv<'a>(steps: &'a [super::Step], id: &str) -> &'a [String] {
    match &steps.iter().find(|s| s.id == id).expect(id).action {
        super::Action::Run { argv, .. } => argv,
        other => panic!("{id} is not a command: {other:?}"),
    }
}
