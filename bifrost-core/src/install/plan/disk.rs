//! Fresh disk only: the partition table, the ESP's file system and the
//! LUKS2 container. Every step here destroys what was there.

use super::layout::Layout;
use super::step::{argv, run};
use super::{Action, DataOwner, Stdin, Step, WriteKind};
use camino::Utf8Path;

/// The GPT partition name to give a fresh partition so that the settings'
/// `/dev/disk/by-partlabel/NAME` path finds it after the install.
fn partlabel(device: &Utf8Path, fallback: &str) -> String {
    device
        .as_str()
        .strip_prefix("/dev/disk/by-partlabel/")
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .unwrap_or(fallback)
        .to_string()
}

/// Erase, partition (ESP + pool), wait for the nodes, format the ESP.
pub(super) fn partition(l: &Layout) -> Vec<Step> {
    let disk = l.req.disk.as_str();
    let esp = &l.settings.boot.esp;
    let esp_label = partlabel(&esp.device, "ESP");
    let pool_label = partlabel(&l.settings.storage.luks.device, "pool");
    vec![
        Step::new(
            "zap",
            format!("Erase the partition tables of {disk}"),
            run(argv(&["sgdisk", "--zap-all", disk])),
        )
        .writes(WriteKind::PartitionTable, disk, DataOwner::Disk)
        .destructive(),
        Step::new(
            "partition",
            format!(
                "Partition {disk}: ESP ({} MiB) and the LUKS2 pool (the rest)",
                esp.size_mib
            ),
            run(vec![
                "sgdisk".into(),
                format!("--new=1:0:+{}M", esp.size_mib),
                "--typecode=1:ef00".into(),
                format!("--change-name=1:{esp_label}"),
                "--new=2:0:0".into(),
                "--typecode=2:8309".into(),
                format!("--change-name=2:{pool_label}"),
                disk.into(),
            ]),
        )
        .writes(WriteKind::PartitionTable, disk, DataOwner::Disk)
        .destructive(),
        Step::new(
            "wait-partitions",
            "Wait for the kernel to show the new partitions",
            Action::WaitFor {
                paths: vec![l.esp_device.clone(), l.luks_device.clone()],
                timeout_secs: 30,
            },
        ),
        Step::new(
            "format-esp",
            format!("Format the ESP {} as FAT32", l.esp_device),
            run(argv(&[
                "mkfs.vfat",
                "-F",
                "32",
                "-n",
                "ESP",
                l.esp_device.as_str(),
            ])),
        )
        .writes(WriteKind::Filesystem, l.esp_device.clone(), DataOwner::Esp)
        .destructive(),
    ]
}

/// `cryptsetup luksFormat` with the settings' Argon2id cost; the
/// passphrase on standard input.
pub(super) fn luks_format(l: &Layout) -> Step {
    let a = &l.settings.storage.luks.argon2id;
    Step::new(
        "luks-format",
        format!(
            "Create the LUKS2 container on {} (argon2id, {} KiB, {} iterations, {} threads)",
            l.luks_device, a.memory_kib, a.iterations, a.parallelism
        ),
        Action::Run {
            argv: vec![
                "cryptsetup".into(),
                "luksFormat".into(),
                "--batch-mode".into(),
                "--type".into(),
                "luks2".into(),
                "--pbkdf".into(),
                "argon2id".into(),
                "--pbkdf-memory".into(),
                a.memory_kib.to_string(),
                "--pbkdf-parallel".into(),
                a.parallelism.to_string(),
                "--pbkdf-force-iterations".into(),
                a.iterations.to_string(),
                "--key-file".into(),
                "-".into(),
                l.luks_device.to_string(),
            ],
            stdin: Stdin::Passphrase,
        },
    )
    .writes(
        WriteKind::LuksHeader,
        l.luks_device.clone(),
        DataOwner::Disk,
    )
    .destructive()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{argv, changed, request};
    use super::super::Mode;
    use super::*;

    #[test]
    fn partition_names_follow_the_settings_by_partlabel_paths() {
        assert_eq!(partlabel("/dev/disk/by-partlabel/EFI".into(), "ESP"), "EFI");
        assert_eq!(partlabel("/dev/nvme0n1p1".into(), "ESP"), "ESP");
        assert_eq!(partlabel("/dev/disk/by-partlabel/".into(), "pool"), "pool");
        let s = changed(|s| s.storage.luks.device = "/dev/disk/by-partlabel/nixpool".into());
        let r = request(Mode::Fresh);
        let steps = partition(&Layout::new(&s, &r).unwrap());
        let a = argv(&steps, "partition");
        assert!(a.contains(&"--change-name=1:ESP".to_string()), "{a:?}");
        assert!(a.contains(&"--change-name=2:nixpool".to_string()), "{a:?}");
        assert!(a.contains(&"--new=1:0:+64M".to_string()), "{a:?}");
        assert!(steps
            .iter()
            .all(|s| s.destructive || s.id == "wait-partitions"));
    }

    #[test]
    fn luks_format_takes_the_cost_and_the_passphrase_on_stdin() {
        let s = changed(|s| s.storage.luks.argon2id.memory_kib = 65536);
        let r = request(Mode::Fresh);
        let step = luks_format(&Layout::new(&s, &r).unwrap());
        let Action::Run { argv, stdin } = &step.action else {
            panic!("{step:?}")
        };
        assert_eq!(*stdin, Stdin::Passphrase);
        assert!(argv.windows(2).any(|w| w == ["--pbkdf-memory", "65536"]));
        assert_eq!(argv.last().unwrap(), "/dev/nvme0n1p2");
        assert!(step.destructive);
    }
}
