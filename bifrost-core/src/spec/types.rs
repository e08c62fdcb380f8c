//! The host settings document: the one typed description of a machine.
//!
//! These types are the single source of truth for the format. The NixOS module
//! (`modules/`) writes exactly this document, `bifrost schema` prints its JSON
//! Schema, and every generator reads it. Keys are camelCase; unknown keys are
//! rejected so a typo never silently falls back to a default.

use camino::Utf8PathBuf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole host settings document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "bifrost host settings")]
pub struct HostSettings {
    /// Optional link to the JSON Schema, for editors. Ignored by bifrost.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"./host-settings.schema.json")]
    pub schema: Option<String>,
    /// Host name (`networking.hostName`): letters, digits and `-`, at most 63 characters.
    #[schemars(example = &"surface-pro-8")]
    pub host_name: String,
    /// Which device this is.
    pub hardware: Hardware,
    /// Which kernel to boot.
    #[serde(default)]
    pub kernel: Kernel,
    /// Boot loader (rEFInd) and EFI system partition.
    #[serde(default)]
    pub boot: Boot,
    /// LUKS2 container and the btrfs subvolumes inside it.
    pub storage: Storage,
    /// The other operating system on the same disk, if any.
    #[serde(default)]
    pub dual_boot: DualBoot,
    /// Graphical desktop.
    #[serde(default)]
    pub desktop: Desktop,
    /// Firewall, audit logging and Secure Boot.
    #[serde(default)]
    pub security: Security,
    /// Package sources beyond nixpkgs.
    #[serde(default)]
    pub packages: Packages,
    /// Binary caches and remote builders (the linux-surface kernel compiles for hours).
    #[serde(default)]
    pub nix: NixSettings,
    /// Where build artifacts go.
    #[serde(default)]
    pub output: Output,
    /// People who log in; at least one must be an administrator.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{ "name": "alice", "admin": true }]))]
    pub users: Vec<User>,
}

/// One person who logs in (`users.users.<name>` with `isNormalUser`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// Login name: lowercase letters, digits, `_` and `-`, starting with a
    /// letter or `_`, at most 31 characters (nixpkgs refuses longer).
    #[schemars(example = &"alice")]
    pub name: String,
    /// User ID. 1000 is the first user Kinoite creates: the same number on
    /// both systems makes files on the shared subvolume belong to the same person.
    #[serde(default = "defaults::uid")]
    #[schemars(example = 1001)]
    pub uid: u32,
    /// Supplementary groups (such as `networkmanager`); administrators get
    /// `wheel` from `admin`, not from here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["video", "networkmanager"]))]
    pub groups: Vec<String>,
    /// SSH public keys allowed to log in as this user, one `authorized_keys` line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… alice@laptop"]))]
    pub ssh_authorized_keys: Vec<String>,
    /// Administrator: member of `wheel`, may use sudo (with their own password).
    #[serde(default)]
    #[schemars(example = true)]
    pub admin: bool,
}

/// Device description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hardware {
    /// Device profile: selects the nixos-hardware module and the initrd modules.
    #[schemars(example = &"surface-pro-8")]
    pub profile: HardwareProfile,
    /// Extra kernel modules for the initrd (beyond what the profile needs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["virtio_pci", "virtio_blk"]))]
    pub extra_initrd_modules: Vec<String>,
}

/// Known device profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HardwareProfile {
    /// Microsoft Surface Pro 8 (Intel Tiger Lake); uses nixos-hardware's
    /// `microsoft-surface-pro-intel` module.
    #[serde(rename = "surface-pro-8")]
    SurfacePro8,
    /// Any x86_64 machine with UEFI firmware.
    #[serde(rename = "generic-x86_64-uefi")]
    GenericX86_64Uefi,
}

/// Kernel choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kernel {
    /// Where the kernel comes from.
    #[serde(default)]
    #[schemars(example = &"linux-surface")]
    pub source: KernelSource,
    /// linux-surface branch (`hardware.microsoft-surface.kernelVersion`); only
    /// meaningful with `source = "linux-surface"`.
    #[serde(default)]
    #[schemars(example = &"stable")]
    pub surface_version: SurfaceKernelVersion,
    /// Extra kernel command-line parameters (`boot.kernelParams`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["console=ttyS0"]))]
    pub params: Vec<String>,
}

/// Kernel source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KernelSource {
    /// The linux-surface kernel from nixos-hardware (Surface profiles only).
    LinuxSurface,
    /// nixpkgs' default kernel (`pkgs.linuxPackages`).
    #[default]
    NixosDefault,
    /// nixpkgs' newest kernel (`pkgs.linuxPackages_latest`).
    NixosLatest,
}

/// linux-surface kernel branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SurfaceKernelVersion {
    /// The long-term-support branch.
    #[default]
    Longterm,
    /// The current stable branch.
    Stable,
}

/// Boot loader settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Boot {
    /// Seconds rEFInd waits before booting the default entry (0 boots at once;
    /// -1 boots at once unless a key is held).
    #[serde(default = "defaults::timeout")]
    #[schemars(example = 3)]
    pub timeout: i32,
    /// Which entry boots by default.
    #[serde(default)]
    #[schemars(example = &"kinoite")]
    pub default_entry: DefaultEntry,
    /// How many NixOS generations get a menu entry (newest first); 0 keeps
    /// them all.
    #[serde(default = "defaults::max_generations")]
    #[schemars(example = 5)]
    pub max_generations: u32,
    /// Install rEFInd at the firmware fallback path `EFI/BOOT/BOOTX64.EFI`
    /// (for removable media and firmware that forgets NVRAM entries).
    #[serde(default)]
    #[schemars(example = true)]
    pub removable: bool,
    /// Text-only menu (no graphics, no icons).
    #[serde(default)]
    #[schemars(example = true)]
    pub text_only: bool,
    /// Description of the firmware boot entry (NVRAM) that starts rEFInd,
    /// created when the install is not removable. An existing entry for
    /// rEFInd's loader on the ESP's partition is reused (and put first)
    /// whatever its label, so changing it creates no second entry.
    #[serde(default = "defaults::nvram_label")]
    #[schemars(example = &"rEFInd")]
    pub nvram_label: String,
    /// The EFI system partition.
    #[serde(default)]
    pub esp: Esp,
}

impl Default for Boot {
    fn default() -> Self {
        Boot {
            timeout: defaults::timeout(),
            default_entry: DefaultEntry::default(),
            max_generations: defaults::max_generations(),
            removable: false,
            text_only: false,
            nvram_label: defaults::nvram_label(),
            esp: Esp::default(),
        }
    }
}

/// Which menu entry rEFInd selects by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DefaultEntry {
    /// The newest NixOS generation.
    #[default]
    Nixos,
    /// The Kinoite side (needs `dualBoot.kinoite`).
    Kinoite,
    /// The system booted last (rEFInd's `+`), else the newest NixOS
    /// generation: a Kinoite update that reboots to apply comes back to Kinoite.
    LastBooted,
}

/// EFI system partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Esp {
    /// Where the ESP is mounted (`boot.loader.efi.efiSysMountPoint`).
    #[serde(default = "defaults::esp_mount_point")]
    #[schemars(with = "String")]
    #[schemars(example = &"/efi")]
    pub mount_point: Utf8PathBuf,
    /// Block device of the ESP, preferably a stable `/dev/disk/by-*` path.
    #[serde(default = "defaults::esp_device")]
    #[schemars(with = "String")]
    #[schemars(example = &"/dev/disk/by-uuid/7A3B-1C2D")]
    pub device: Utf8PathBuf,
    /// File system type; UEFI firmware reads only FAT, so this must be `vfat`.
    #[serde(default = "defaults::esp_fs_type")]
    #[schemars(example = &"vfat")]
    pub fs_type: String,
    /// Size of the ESP when bifrost partitions a fresh disk, in MiB.
    #[serde(default = "defaults::esp_size_mib")]
    #[schemars(example = 512)]
    pub size_mib: u32,
}

impl Default for Esp {
    fn default() -> Self {
        Esp {
            mount_point: defaults::esp_mount_point(),
            device: defaults::esp_device(),
            fs_type: defaults::esp_fs_type(),
            size_mib: defaults::esp_size_mib(),
        }
    }
}

/// Encrypted storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Storage {
    /// The LUKS2 container holding the btrfs pool.
    pub luks: Luks,
    /// btrfs file-system label inside the container.
    #[serde(default = "defaults::btrfs_label")]
    #[schemars(example = &"pool")]
    pub btrfs_label: String,
    /// btrfs subvolumes and where they are mounted.
    #[schemars(example = serde_json::json!([{ "name": "@", "mountPoint": "/" }, { "name": "@shared", "mountPoint": "/shared", "owner": "shared" }]))]
    pub subvolumes: Vec<Subvolume>,
    /// Swap, if any.
    #[serde(default)]
    pub swap: Swap,
    /// The group owning the shared subvolume on both systems (create it with
    /// the same gid on Kinoite: `groupadd -g <gid> <name>`).
    #[serde(default)]
    pub shared_group: SharedGroup,
}

/// A group with the same gid on NixOS and on Kinoite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedGroup {
    /// Group name (`users.groups.<name>` on NixOS).
    #[serde(default = "defaults::shared_group_name")]
    #[schemars(example = &"family")]
    pub name: String,
    /// Group id, the same on both systems; outside the ranges both give
    /// users' own groups by default.
    #[serde(default = "defaults::shared_group_gid")]
    #[schemars(example = 2001)]
    pub gid: u32,
}

impl Default for SharedGroup {
    fn default() -> Self {
        SharedGroup {
            name: defaults::shared_group_name(),
            gid: defaults::shared_group_gid(),
        }
    }
}

/// LUKS2 container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Luks {
    /// Mapper name: the pool opens as `/dev/mapper/<name>`.
    #[serde(default = "defaults::luks_name")]
    #[schemars(example = &"cryptroot")]
    pub name: String,
    /// Encrypted partition, preferably a stable `/dev/disk/by-*` path.
    #[schemars(with = "String")]
    #[schemars(example = &"/dev/disk/by-partlabel/pool")]
    pub device: Utf8PathBuf,
    /// Pass discards (TRIM) through dm-crypt (`allowDiscards`).
    #[serde(default = "defaults::yes")]
    #[schemars(example = false)]
    pub allow_discards: bool,
    /// Argon2id key-derivation cost.
    #[serde(default)]
    pub argon2id: Argon2id,
    /// How the container unlocks at boot: passphrase, or the TPM (`bifrost tpm enroll`).
    #[serde(default, skip_serializing_if = "Unlock::is_default")]
    pub unlock: Unlock,
}

/// How the LUKS2 container unlocks at boot. The passphrase always stays as
/// the fallback: the TPM only adds a key slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unlock {
    /// Passphrase only, or a TPM2 key slot (with or without a PIN) tried first.
    #[serde(default)]
    #[schemars(example = &"tpm2")]
    pub method: UnlockMethod,
    /// PCRs the TPM2 key is sealed to (0 to 23); 7 is the Secure Boot state.
    #[serde(default = "defaults::tpm2_pcrs")]
    #[schemars(example = serde_json::json!([7]))]
    // The range reaches the NixOS option type only: `spec::unlock` reports
    // a PCR out of range with a better message than the JSON Schema would.
    #[schemars(extend("x-nix-items" = serde_json::json!({ "minimum": 0, "maximum": 23 })))]
    pub tpm2_pcrs: Vec<u8>,
}

impl Unlock {
    /// The passphrase-only default (left out when settings are written).
    pub fn is_default(&self) -> bool {
        *self == Unlock::default()
    }
}

impl Default for Unlock {
    fn default() -> Self {
        Unlock {
            method: UnlockMethod::default(),
            tpm2_pcrs: defaults::tpm2_pcrs(),
        }
    }
}

/// How the container unlocks at boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UnlockMethod {
    /// The passphrase, typed at boot.
    #[default]
    Passphrase,
    /// The TPM releases the key when the PCRs match; the passphrase is the fallback.
    Tpm2,
    /// Like `tpm2`, and the TPM also asks for a PIN.
    Tpm2Pin,
}

impl UnlockMethod {
    /// Whether the TPM takes part in unlocking.
    pub fn uses_tpm2(self) -> bool {
        matches!(self, UnlockMethod::Tpm2 | UnlockMethod::Tpm2Pin)
    }
}

/// Argon2id cost parameters, as `cryptsetup luksFormat --pbkdf argon2id` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Argon2id {
    /// Memory cost in KiB (`--pbkdf-memory`): 32 to 4194304.
    #[serde(default = "defaults::argon_memory")]
    #[schemars(example = 524288)]
    pub memory_kib: u32,
    /// Time cost, in iterations (`--pbkdf-force-iterations`): 4 or more.
    #[serde(default = "defaults::argon_iterations")]
    #[schemars(example = 6)]
    pub iterations: u32,
    /// Parallel threads (`--pbkdf-parallel`): 1 to 4.
    #[serde(default = "defaults::argon_parallelism")]
    #[schemars(example = 2)]
    pub parallelism: u32,
}

impl Default for Argon2id {
    fn default() -> Self {
        Argon2id {
            memory_kib: defaults::argon_memory(),
            iterations: defaults::argon_iterations(),
            parallelism: defaults::argon_parallelism(),
        }
    }
}

/// One btrfs subvolume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subvolume {
    /// Subvolume name in the pool, such as `@home`.
    #[schemars(example = &"@home")]
    pub name: String,
    /// Absolute mount point in NixOS, or none for a subvolume that is not mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    #[schemars(example = &"/home")]
    pub mount_point: Option<Utf8PathBuf>,
    /// Mount options besides `subvol=`, which bifrost adds.
    #[serde(default = "defaults::mount_options")]
    #[schemars(example = serde_json::json!(["compress=zstd:1", "noatime"]))]
    pub mount_options: Vec<String>,
    /// Who owns the subvolume's data. bifrost never writes to a subvolume
    /// owned by `kinoite`, nor to the data of a `shared` one.
    #[serde(default)]
    #[schemars(example = &"shared")]
    pub owner: SubvolumeOwner,
}

/// Owner of a subvolume in the shared pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubvolumeOwner {
    /// Created and used by NixOS.
    #[default]
    Nixos,
    /// Shared with Kinoite (the seed's `@shared`); NixOS mounts it but
    /// never recreates it.
    Shared,
    /// Kinoite's own (for example `@root`); NixOS never touches it.
    Kinoite,
}

/// Swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Swap {
    /// Kind of swap.
    #[serde(default)]
    #[schemars(example = &"file")]
    pub kind: SwapKind,
    /// Size in MiB (for `file` and `zram`).
    #[serde(default)]
    #[schemars(example = 8192)]
    pub size_mib: u32,
}

/// Kind of swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SwapKind {
    /// No swap.
    #[default]
    None,
    /// A swap file in its own `@swap` subvolume (no copy-on-write).
    File,
    /// Compressed swap in RAM (`zramSwap`).
    Zram,
}

/// The other operating system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DualBoot {
    /// Fedora Kinoite beside NixOS, booted by rEFInd from its own `/boot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinoite: Option<Kinoite>,
}

/// Where the Kinoite side's boot entries live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kinoite {
    /// Kinoite's `/boot`: `UUID=<file-system UUID>` (as in Fedora's
    /// `/etc/fstab`), `PARTUUID=<GPT partition GUID>`, `LABEL=<label>` or a bare label.
    #[schemars(example = &"UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b")]
    pub boot_volume: crate::spec::BootVolume,
    /// Folder of Boot Loader Specification entries on that volume, as ostree writes them.
    #[serde(default = "defaults::bls_entries")]
    #[schemars(with = "String")]
    #[schemars(example = &"/loader/entries")]
    pub entries_dir: Utf8PathBuf,
    /// File system of Kinoite's `/boot` (rEFInd loads the matching driver).
    #[serde(default = "defaults::kinoite_fs")]
    #[schemars(example = &"ext4")]
    pub boot_fs_type: String,
    /// Menu title of the Kinoite entry.
    #[serde(default = "defaults::kinoite_title")]
    #[schemars(example = &"Kinoite")]
    pub title: String,
    /// How rEFInd boots Kinoite: `chainload` starts Fedora's own boot loader
    /// (`EFI/fedora/shimx64.efi`), always current and Secure Boot ready;
    /// `direct` copies its BLS entries into rEFInd's menu (kept current by
    /// `bifrost esp refresh-kinoite` run from Kinoite).
    #[serde(default)]
    #[schemars(example = &"direct")]
    pub mode: KinoiteMode,
}

/// How rEFInd boots the Kinoite side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum KinoiteMode {
    /// Start Fedora's boot loader (shim, else grub) from the ESP; it reads
    /// the current BLS entries itself.
    #[default]
    Chainload,
    /// One rEFInd entry per BLS entry, booting Kinoite's kernel directly.
    Direct,
}

/// Desktop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Desktop {
    /// KDE Plasma 6 with SDDM.
    #[serde(default)]
    #[schemars(example = true)]
    pub plasma6: bool,
}

/// Security stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Security {
    /// nftables firewall.
    #[serde(default)]
    pub firewall: Firewall,
    /// Linux audit logging (auditd).
    #[serde(default)]
    #[schemars(example = true)]
    pub audit: bool,
    /// Secure Boot.
    #[serde(default)]
    pub secure_boot: SecureBoot,
}

/// Firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Firewall {
    /// Enable the firewall (nftables backend).
    #[serde(default = "defaults::yes")]
    #[schemars(example = false)]
    pub enable: bool,
    /// TCP ports open to the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!([22]))]
    pub allowed_tcp_ports: Vec<u16>,
    /// UDP ports open to the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!([5353]))]
    pub allowed_udp_ports: Vec<u16>,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            enable: true,
            allowed_tcp_ports: Vec::new(),
            allowed_udp_ports: Vec::new(),
        }
    }
}

/// Secure Boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecureBoot {
    /// Sign rEFInd and the kernels with the keys below.
    #[serde(default)]
    #[schemars(example = true)]
    pub enable: bool,
    /// Folder with the signing keys, read at install time (never copied into
    /// the Nix store): `mok.key`/`mok.crt` for the shim route, `db.key`/`db.crt`
    /// for own keys (`bifrost sb keys`); required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    #[schemars(example = &"/etc/secureboot")]
    pub keys_path: Option<Utf8PathBuf>,
    /// How the firmware comes to trust the signed rEFInd.
    #[serde(default)]
    #[schemars(example = &"own-keys")]
    pub route: SecureBootRoute,
    /// Microsoft-signed shim for the shim route; null: Fedora's
    /// `EFI/fedora/shimx64.efi` on the ESP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    #[schemars(example = &"/run/shim/shimx64.efi")]
    pub shim: Option<Utf8PathBuf>,
}

/// How the firmware comes to trust the signed rEFInd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBootRoute {
    /// A Microsoft-signed shim starts rEFInd; the key is in shim's MOK list
    /// (firmware that takes no keys of its own, such as the Surface's).
    #[default]
    Shim,
    /// The key is in the firmware's own db (`bifrost sb enroll`).
    OwnKeys,
}

/// Package sources beyond nixpkgs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Packages {
    /// Flatpak, for GUI apps not in nixpkgs.
    #[serde(default)]
    #[schemars(example = true)]
    pub flatpak: bool,
    /// Podman, for development containers.
    #[serde(default)]
    #[schemars(example = true)]
    pub podman: bool,
    /// direnv with nix-direnv, for per-project shells.
    #[serde(default)]
    #[schemars(example = true)]
    pub direnv: bool,
}

/// Nix daemon settings for building the system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NixSettings {
    /// Extra binary caches (`nix.settings.substituters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["https://cache.example.org"]))]
    pub substituters: Vec<String>,
    /// Public keys of those caches (`nix.settings.trusted-public-keys`), `name:base64`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!(["cache.example.org-1:AAAA…"]))]
    pub trusted_public_keys: Vec<String>,
    /// Remote builders (`nix.buildMachines`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = serde_json::json!([{ "hostName": "builder.example.org", "maxJobs": 8 }]))]
    pub build_machines: Vec<BuildMachine>,
}

/// One remote builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildMachine {
    /// Host name or address reached over SSH.
    #[schemars(example = &"builder.example.org")]
    pub host_name: String,
    /// System types it builds, such as `x86_64-linux`.
    #[serde(default = "defaults::systems")]
    #[schemars(example = serde_json::json!(["x86_64-linux", "i686-linux"]))]
    pub systems: Vec<String>,
    /// SSH user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"nixbuild")]
    pub ssh_user: Option<String>,
    /// SSH private key file on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    #[schemars(example = &"/root/.ssh/id_builder")]
    pub ssh_key: Option<Utf8PathBuf>,
    /// Parallel jobs on that machine.
    #[serde(default = "defaults::max_jobs")]
    #[schemars(example = 8)]
    pub max_jobs: u32,
}

/// Build output location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// Root of the build output layout (`0_podman`, `1_oci`, `2_raw`, `3_deploy`).
    #[serde(default = "defaults::output_root")]
    #[schemars(with = "String")]
    #[schemars(example = &"/srv/bifrost")]
    pub root: Utf8PathBuf,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            root: defaults::output_root(),
        }
    }
}

/// Default values, shared by serde, the schema and the NixOS module.
pub mod defaults {
    use camino::Utf8PathBuf;

    pub fn yes() -> bool {
        true
    }
    pub fn timeout() -> i32 {
        5
    }
    pub fn max_generations() -> u32 {
        10
    }
    pub fn nvram_label() -> String {
        NVRAM_LABEL.into()
    }
    /// The firmware boot entry's description when nothing names one.
    pub const NVRAM_LABEL: &str = "bifrost rEFInd";
    pub fn esp_mount_point() -> Utf8PathBuf {
        "/boot/efi".into()
    }
    pub fn esp_device() -> Utf8PathBuf {
        "/dev/disk/by-partlabel/ESP".into()
    }
    pub fn esp_fs_type() -> String {
        "vfat".into()
    }
    pub fn esp_size_mib() -> u32 {
        1024
    }
    pub fn shared_group_name() -> String {
        "shared".into()
    }
    pub fn shared_group_gid() -> u32 {
        2000
    }
    pub fn btrfs_label() -> String {
        "pool".into()
    }
    pub fn luks_name() -> String {
        "cryptroot".into()
    }
    /// 1 GiB: cryptsetup's own default memory cost for argon2id.
    pub fn argon_memory() -> u32 {
        1_048_576
    }
    pub fn argon_iterations() -> u32 {
        4
    }
    pub fn argon_parallelism() -> u32 {
        4
    }
    /// PCR 7: the Secure Boot state (keys and policy), stable across kernel updates.
    pub fn tpm2_pcrs() -> Vec<u8> {
        vec![7]
    }
    pub fn mount_options() -> Vec<String> {
        vec!["compress=zstd".into(), "noatime".into()]
    }
    pub fn bls_entries() -> Utf8PathBuf {
        "/loader/entries".into()
    }
    pub fn kinoite_fs() -> String {
        "ext4".into()
    }
    pub fn kinoite_title() -> String {
        "Fedora Kinoite".into()
    }
    pub fn systems() -> Vec<String> {
        vec!["x86_64-linux".into()]
    }
    pub fn max_jobs() -> u32 {
        1
    }
    /// The first user's ID on Fedora (and so Kinoite) and on NixOS.
    pub fn uid() -> u32 {
        1000
    }
    /// The seed's output layout.
    pub fn output_root() -> Utf8PathBuf {
        "/mnt/kinoite/@images/a_nixos_host".into()
    }
}
