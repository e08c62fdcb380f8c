//! How `bifrost detect` shows a [`Detection`].

use super::Detection;
use crate::hardware::Profile;

impl Detection {
    /// The host settings as `bifrost detect --json` prints them (valid input
    /// for `bifrost check`).
    pub fn settings_json(&self) -> String {
        serde_json::to_string_pretty(&self.settings).expect("settings serialize")
    }

    /// The human report: machine, profile, storage, then the settings.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let profile = Profile::of(s.hardware.profile);
        let key = serde_json::to_value(s.hardware.profile)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        format!(
            "machine:  {} {}\nprofile:  {} ({key})\nstorage:  LUKS {} at {}, {} subvolume(s)\nhost settings:\n{}\n",
            or_unknown(&self.vendor),
            or_unknown(&self.product),
            profile.name,
            s.storage.luks.name,
            s.storage.luks.device,
            s.storage.subvolumes.len(),
            self.settings_json()
        )
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "(unknown)"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decide, Snapshot};

    #[test]
    fn summary_names_machine_profile_and_storage() {
        let d = decide(&Snapshot::default()).unwrap();
        let text = d.summary();
        let head: Vec<&str> = text.lines().take(4).collect();
        assert_eq!(
            head,
            [
                "machine:  (unknown) (unknown)",
                "profile:  generic x86_64 UEFI machine (generic-x86_64-uefi)",
                "storage:  LUKS cryptroot at /dev/disk/by-partlabel/pool, 3 subvolume(s)",
                "host settings:"
            ]
        );
        assert!(text.ends_with(&format!("{}\n", d.settings_json())));
        let back: crate::spec::HostSettings = serde_json::from_str(&d.settings_json()).unwrap();
        assert_eq!(back, *d.settings);
    }
}
