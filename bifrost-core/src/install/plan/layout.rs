//! The facts every phase of the plan shares, derived once from the settings
//! and the request: which devices, where things are mounted, whether
//! Kinoite is beside us. Refuses a request that cannot make a safe plan.

use super::{partition_path, KinoiteAccess, Mode, PlanError, PlanRequest};
use crate::spec::{Kinoite, Settings};
use camino::{Utf8Path, Utf8PathBuf};

/// Settings, request and what follows from them.
pub(super) struct Layout<'a> {
    pub settings: &'a Settings,
    pub req: &'a PlanRequest,
    /// Kinoite's side, in dual-boot mode.
    pub kinoite: Option<&'a Kinoite>,
    /// Empty with `storage_only` (no ESP install).
    pub refind_efi: Utf8PathBuf,
    pub esp_device: Utf8PathBuf,
    pub luks_device: Utf8PathBuf,
    /// `/dev/mapper/<name>` once the pool is open.
    pub mapper: Utf8PathBuf,
    /// Where the pool's top level is mounted to manage subvolumes.
    pub top: Utf8PathBuf,
    /// The ESP as the installer sees it, below the target.
    pub esp_at: Utf8PathBuf,
    /// Where Kinoite's `/boot` is mounted, read-only.
    pub kinoite_boot: Utf8PathBuf,
}

impl<'a> Layout<'a> {
    pub fn new(settings: &'a Settings, req: &'a PlanRequest) -> Result<Self, PlanError> {
        let refind_efi = match (&req.refind_efi, req.storage_only) {
            (Some(r), _) => r.clone(),
            (None, true) => Utf8PathBuf::new(),
            (None, false) => return Err(PlanError::NoRefind),
        };
        let mut absolute = vec![("--disk", &req.disk), ("--target", &req.target)];
        if !req.storage_only {
            absolute.push(("--refind-efi", &refind_efi));
        }
        if let Some((arg, p)) = absolute.into_iter().find(|(_, p)| !p.is_absolute()) {
            return Err(PlanError::NotAbsolute {
                arg,
                value: p.to_string(),
            });
        }
        let kinoite = match req.mode {
            Mode::DualBoot => Some(
                settings
                    .dual_boot
                    .kinoite
                    .as_ref()
                    .ok_or(PlanError::NoKinoite)?,
            ),
            Mode::Fresh => None,
        };
        let luks_name = &settings.storage.luks.name;
        let (esp_device, luks_device) = match req.mode {
            Mode::Fresh => (partition_path(&req.disk, 1), partition_path(&req.disk, 2)),
            Mode::DualBoot => (
                req.esp_device
                    .clone()
                    .unwrap_or_else(|| settings.boot.esp.device.clone()),
                req.luks_device
                    .clone()
                    .unwrap_or_else(|| settings.storage.luks.device.clone()),
            ),
        };
        Ok(Layout {
            settings,
            req,
            kinoite,
            refind_efi,
            esp_device,
            luks_device,
            mapper: format!("/dev/mapper/{luks_name}").into(),
            top: req.work_dir.join(format!("pool-{luks_name}")),
            esp_at: super::step::under(&req.target, &settings.boot.esp.mount_point),
            kinoite_boot: req.work_dir.join("kinoite-boot"),
        })
    }

    pub fn target(&self) -> &'a Utf8Path {
        &self.req.target
    }

    /// How the pool's steps reach Kinoite: beside it, the pool is its too.
    pub fn pool_access(&self) -> KinoiteAccess {
        if self.kinoite.is_some() {
            KinoiteAccess::Pool
        } else {
            KinoiteAccess::None
        }
    }

    /// Kinoite's `/boot` device, when the ESP step reads it.
    pub fn kinoite_boot_device(&self) -> Option<Utf8PathBuf> {
        let k = self.kinoite.filter(|_| !self.req.storage_only)?;
        Some(
            self.req
                .kinoite_boot_device
                .clone()
                .unwrap_or_else(|| k.boot_volume.device().into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{changed, request, settings};
    use super::*;

    #[test]
    fn fresh_numbers_the_partitions_dual_boot_takes_the_settings() {
        let s = settings();
        let r = request(Mode::Fresh);
        let l = Layout::new(&s, &r).unwrap();
        assert_eq!(l.esp_device, "/dev/nvme0n1p1");
        assert_eq!(l.luks_device, "/dev/nvme0n1p2");
        assert_eq!(l.mapper, "/dev/mapper/cryptroot");
        assert_eq!(l.top, "/run/bifrost/pool-cryptroot");
        assert_eq!(l.esp_at, "/mnt/boot/efi");
        assert!(l.kinoite.is_none());
        assert_eq!(l.pool_access(), KinoiteAccess::None);
        assert_eq!(l.kinoite_boot_device(), None);

        let mut r = request(Mode::DualBoot);
        let l = Layout::new(&s, &r).unwrap();
        assert_eq!(l.esp_device, s.boot.esp.device);
        assert_eq!(l.luks_device, s.storage.luks.device);
        assert_eq!(l.pool_access(), KinoiteAccess::Pool);
        assert_eq!(
            l.kinoite_boot_device().unwrap(),
            "/dev/disk/by-label/kinoite-boot"
        );
        r.luks_device = Some("/dev/sdb3".into());
        r.kinoite_boot_device = Some("/dev/sdb2".into());
        let l = Layout::new(&s, &r).unwrap();
        assert_eq!(l.luks_device, "/dev/sdb3");
        assert_eq!(l.kinoite_boot_device().unwrap(), "/dev/sdb2");
        r.storage_only = true;
        assert_eq!(Layout::new(&s, &r).unwrap().kinoite_boot_device(), None);
    }

    #[test]
    fn refind_is_needed_unless_storage_only_and_paths_must_be_absolute() {
        let s = settings();
        let mut r = request(Mode::Fresh);
        r.refind_efi = None;
        assert!(matches!(Layout::new(&s, &r), Err(PlanError::NoRefind)));
        r.storage_only = true;
        assert_eq!(Layout::new(&s, &r).unwrap().refind_efi, "");
        r.refind_efi = Some("refind_x64.efi".into());
        Layout::new(&s, &r).expect("storage only: the binary is not used");
        r.storage_only = false;
        let e = Layout::new(&s, &r).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("--refind-efi must be an absolute path"),
            "{e}"
        );
        r.disk = "sda".into();
        let e = Layout::new(&s, &r).err().unwrap();
        assert!(
            e.to_string().starts_with("--disk must be an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn dual_boot_needs_kinoite_in_the_settings() {
        let s = changed(|s| s.dual_boot.kinoite = None);
        Layout::new(&s, &request(Mode::Fresh)).unwrap();
        assert!(matches!(
            Layout::new(&s, &request(Mode::DualBoot)),
            Err(PlanError::NoKinoite)
        ));
    }
}
