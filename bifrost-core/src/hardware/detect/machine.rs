//! Reading the machine: the [`Machine`] seam and the [`Snapshot`] that
//! detection decides from, filled by one function ([`Snapshot::read`]).

use super::lsblk::{self, Dev};
use super::steps;
use crate::hardware::HardwareError;
use camino::Utf8PathBuf;

/// Recorded `lsblk --json -O` output under a fake root.
pub const LSBLK_FILE: &str = "lsblk.json";
/// Recorded `btrfs subvolume list <mount point>` output under a fake root.
pub const SUBVOLUME_LIST_FILE: &str = "btrfs-subvolume-list.txt";

/// How detection reads the machine.
pub trait Machine {
    /// Contents of `rel` (such as `sys/class/dmi/id/product_name`) under the root; `None` if absent.
    fn read(&self, rel: &str) -> Result<Option<String>, HardwareError>;
    /// `lsblk --json -O` output and where it came from.
    fn lsblk(&self) -> Result<(String, LsblkSource), HardwareError>;
    /// `btrfs subvolume list` output for the btrfs mounted at `mount_point`; `None` if unavailable.
    fn subvolume_list(&self, mount_point: &str) -> Result<Option<String>, HardwareError>;
}

/// Where `lsblk --json -O` output came from, for errors about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsblkSource {
    /// Recorded in this file (`lsblk.json` under `--root`).
    Recorded(Utf8PathBuf),
    /// Printed by `lsblk --json -O` run on this machine.
    Live,
}

impl LsblkSource {
    /// Where the output came from.
    pub fn origin(&self) -> String {
        match self {
            LsblkSource::Recorded(path) => path.to_string(),
            LsblkSource::Live => "`lsblk --json -O` run on this machine".into(),
        }
    }

    /// How to get output bifrost can read from there.
    pub fn fix(&self) -> String {
        match self {
            LsblkSource::Recorded(path) => format!(
                "record it again on the machine it describes with `lsblk --json -O > {path}`"
            ),
            LsblkSource::Live => "check which `lsblk` comes first on PATH: bifrost needs util-linux's (2.37 or newer)".into(),
        }
    }
}

/// Reads a root folder: `/` for this machine (running `lsblk` and `btrfs`),
/// or a recorded tree holding `lsblk.json` and `btrfs-subvolume-list.txt`.
#[derive(Debug, Clone)]
pub struct RootMachine {
    pub root: Utf8PathBuf,
}

impl RootMachine {
    fn live(&self) -> bool {
        self.root == "/"
    }
}

impl Machine for RootMachine {
    fn read(&self, rel: &str) -> Result<Option<String>, HardwareError> {
        let path = self.root.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(crate::fsutil::IoError::new(path, "read", source).into()),
        }
    }

    fn lsblk(&self) -> Result<(String, LsblkSource), HardwareError> {
        if let Some(text) = self.read(LSBLK_FILE)? {
            return Ok((text, LsblkSource::Recorded(self.root.join(LSBLK_FILE))));
        }
        if !self.live() {
            return Err(HardwareError::NoLsblk {
                root: self.root.to_string(),
            });
        }
        crate::process::Cmd::new("lsblk", ["--json", "-O"])
            .inherit_stdin()
            .read()
            .map(|text| (text, LsblkSource::Live))
            .map_err(HardwareError::LsblkFailed)
    }

    fn subvolume_list(&self, mount_point: &str) -> Result<Option<String>, HardwareError> {
        if let Some(text) = self.read(SUBVOLUME_LIST_FILE)? {
            return Ok(Some(text));
        }
        if !self.live() {
            return Ok(None);
        }
        // Needs root and btrfs-progs; without them the mounted subvolumes
        // (from lsblk) are still known, so this is not an error.
        Ok(
            crate::process::Cmd::new("btrfs", ["subvolume", "list", mount_point])
                .stderr_null()
                .inherit_stdin()
                .stdout_only()
                .ok(),
        )
    }
}

/// One line of `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapArea {
    /// The swap file or device, as the kernel names it.
    pub path: String,
    /// `file` or `partition`.
    pub kind: String,
    pub size_kib: u64,
}

/// Everything detection reads from the machine, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// DMI `sys_vendor` and `product_name`, trimmed.
    pub vendor: String,
    pub product: String,
    /// `etc/hostname`, trimmed.
    pub hostname: String,
    /// `ID=` of `etc/os-release` (`nixos`, `fedora`…), empty if unknown.
    pub os_id: String,
    /// The kernel command line's arguments (`proc/cmdline`).
    pub cmdline: Vec<String>,
    /// Block device trees from lsblk.
    pub devices: Vec<Dev>,
    /// `proc/self/mountinfo`.
    pub mounts: Vec<crate::mounts::Mount>,
    /// `proc/swaps`.
    pub swaps: Vec<SwapArea>,
    /// `etc/passwd`, as is.
    pub passwd: String,
    /// Top-level subvolumes of the open pool from `btrfs subvolume list`;
    /// `None` when there is no open pool or the list is unavailable.
    pub subvolume_list: Option<Vec<String>>,
}

impl Snapshot {
    /// Read the machine. `btrfs subvolume list` runs only when an opened
    /// LUKS container holds btrfs, on that file system's first mount point.
    pub fn read(machine: &dyn Machine) -> Result<Snapshot, HardwareError> {
        let text = |rel: &str| -> Result<String, HardwareError> {
            Ok(machine.read(rel)?.unwrap_or_default().trim().to_string())
        };
        let vendor = text("sys/class/dmi/id/sys_vendor")?;
        let product = text("sys/class/dmi/id/product_name")?;
        let (lsblk, from) = machine.lsblk()?;
        let devices =
            lsblk::parse(&lsblk).map_err(|source| HardwareError::Lsblk { from, source })?;
        let mounts = crate::mounts::parse(&text("proc/self/mountinfo")?);
        let os_id = os_release_id(&text("etc/os-release")?);
        let hostname = text("etc/hostname")?;
        let subvolume_list = match steps::open_pool(&devices) {
            Some(pool) => {
                let first = pool.mounts().next().map(|(mp, _)| mp);
                machine
                    .subvolume_list(first.as_deref().unwrap_or("/"))?
                    .map(|l| parse_subvolume_list(&l))
            }
            None => None,
        };
        let swaps = parse_swaps(&text("proc/swaps")?);
        let cmdline = text("proc/cmdline")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let passwd = machine.read("etc/passwd")?.unwrap_or_default();
        Ok(Snapshot {
            vendor,
            product,
            hostname,
            os_id,
            cmdline,
            devices,
            mounts,
            swaps,
            passwd,
            subvolume_list,
        })
    }
}

fn os_release_id(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// Top-level subvolume names from `btrfs subvolume list` (`ID n gen g top level t path p`).
fn parse_subvolume_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (head, path) = l.split_once(" path ")?;
            let top = head.split_whitespace().collect::<Vec<_>>();
            let level = top.windows(3).find(|w| w[0] == "top" && w[1] == "level")?[2];
            let path = path.trim().trim_start_matches("<FS_TREE>/");
            (level == "5" && !path.contains('/')).then(|| path.to_string())
        })
        .collect()
}

/// `/proc/swaps` after its header (`Filename Type Size Used Priority`);
/// lines without a size are not swap areas.
fn parse_swaps(text: &str) -> Vec<SwapArea> {
    text.lines()
        .skip(1)
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [path, kind, size, ..] => Some(SwapArea {
                path: path.to_string(),
                kind: kind.to_string(),
                size_kib: size.parse().unwrap_or(0),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subvolume_list_keeps_top_level_only() {
        let text = "ID 256 gen 10 top level 5 path @\nID 257 gen 9 top level 5 path <FS_TREE>/@home\nID 300 gen 8 top level 258 path @snapshots/1/snapshot\n";
        assert_eq!(parse_subvolume_list(text), vec!["@", "@home"]);
    }

    #[test]
    fn os_release_id_unquoted() {
        assert_eq!(os_release_id("NAME=\"Fedora\"\nID=\"fedora\"\n"), "fedora");
        assert_eq!(os_release_id("ID=nixos\n"), "nixos");
        assert_eq!(os_release_id(""), "");
    }

    #[test]
    fn swaps_skip_the_header() {
        let s = parse_swaps("Filename\tType\tSize\tUsed\tPriority\n/swap/swapfile file 2097148 0 -2\n/dev/zram0 partition 4194300 0 100\n");
        assert_eq!(
            s,
            [
                SwapArea {
                    path: "/swap/swapfile".into(),
                    kind: "file".into(),
                    size_kib: 2097148
                },
                SwapArea {
                    path: "/dev/zram0".into(),
                    kind: "partition".into(),
                    size_kib: 4194300
                }
            ]
        );
    }

    /// A recorded machine without `btrfs-subvolume-list.txt` and an empty
    /// root that has no lsblk.json.
    #[test]
    fn read_needs_lsblk_and_lists_subvolumes_only_of_an_open_pool() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        let m = RootMachine { root: root.clone() };
        assert!(matches!(
            Snapshot::read(&m),
            Err(HardwareError::NoLsblk { .. })
        ));
        std::fs::write(root.join(LSBLK_FILE), r#"{"blockdevices":[]}"#).unwrap();
        std::fs::write(
            root.join(SUBVOLUME_LIST_FILE),
            "ID 256 gen 1 top level 5 path @\n",
        )
        .unwrap();
        let s = Snapshot::read(&m).unwrap();
        assert_eq!(s.subvolume_list, None, "no pool, so no list");
        assert_eq!(s, Snapshot::default());
    }

    /// lsblk output given as is, from `from`.
    struct Given(&'static str, LsblkSource);

    impl Machine for Given {
        fn read(&self, _: &str) -> Result<Option<String>, HardwareError> {
            Ok(None)
        }
        fn lsblk(&self) -> Result<(String, LsblkSource), HardwareError> {
            Ok((self.0.into(), self.1.clone()))
        }
        fn subvolume_list(&self, _: &str) -> Result<Option<String>, HardwareError> {
            Ok(None)
        }
    }

    /// Bad lsblk output is blamed on where it came from, with that
    /// source's fix: the recorded file by its path, or the live run.
    #[test]
    fn bad_lsblk_output_names_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        std::fs::write(root.join(LSBLK_FILE), "lsblk: unknown column").unwrap();
        let recorded = Snapshot::read(&RootMachine { root: root.clone() })
            .unwrap_err()
            .to_string();
        let file = root.join(LSBLK_FILE);
        assert!(
            recorded.starts_with(&format!("{file}: not valid `lsblk --json -O` output: ")),
            "{recorded}"
        );
        assert!(
            recorded.ends_with(&format!(
                "; record it again on the machine it describes with `lsblk --json -O > {file}`"
            )),
            "{recorded}"
        );

        let live = Snapshot::read(&Given(r#"{"devices":[]}"#, LsblkSource::Live))
            .unwrap_err()
            .to_string();
        assert!(
            live.starts_with("`lsblk --json -O` run on this machine: not valid `lsblk --json -O` output: missing field `blockdevices`"),
            "{live}"
        );
        assert!(!live.contains(LSBLK_FILE), "{live}");
        assert!(live.contains("util-linux"), "{live}");
    }
}
