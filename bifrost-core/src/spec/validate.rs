//! Checks of meaning beyond what the types enforce.
//!
//! Every check runs; the result is the full list of problems in document
//! order, each with the JSON path of the value and what would fix it. The
//! rules that guard generated files (refind.conf, fstab, Nix, the kernel
//! command line) are deliberately stricter than the formats themselves: a
//! value bifrost refuses here can never be half-escaped later.

use super::{
    Argon2id, DefaultEntry, HardwareProfile, HostSettings, KernelSource, Problem, SecureBootRoute,
    SubvolumeOwner, SwapKind,
};
use camino::{Utf8Component, Utf8Path};
use std::collections::HashMap;

/// cryptsetup's limits for argon2i/argon2id (`crypt_pbkdf_get_limits` in
/// lib/crypto_backend/pbkdf_check.c): memory 32..=4 GiB in KiB, at least 4
/// iterations, 1..=4 threads (more threads are silently cut to 4, which would
/// make the stored parameters lie).
pub const ARGON2_MIN_MEMORY_KIB: u32 = 32;
pub const ARGON2_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const ARGON2_MIN_ITERATIONS: u32 = 4;
pub const ARGON2_MIN_PARALLELISM: u32 = 1;
pub const ARGON2_MAX_PARALLELISM: u32 = 4;

/// File systems rEFInd reads Kinoite's `/boot` from: FAT natively, the others
/// through the drivers in its `drivers_x64/` folder (ext3 uses the ext2 driver).
pub const KINOITE_BOOT_FS_TYPES: &[&str] = &["ext4", "ext3", "ext2", "btrfs", "vfat"];

/// User IDs of people: from the first ID Fedora and NixOS give a person
/// (`UID_MIN` in login.defs) up to below systemd's container range.
pub const USER_UIDS: std::ops::RangeInclusive<u32> = 1000..=59999;

/// Login names NixOS or its services own already.
const RESERVED_USERS: &[&str] = &["root", "nobody", "daemon", "bin", "sys", "nixos", "sddm"];

/// SSH public key types `authorized_keys` accepts (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Smallest ESP bifrost creates: FAT32 needs 32 MiB, and one NixOS generation
/// (kernel + initrd) takes tens of MiB more.
pub const ESP_MIN_SIZE_MIB: u32 = 64;

/// Every problem found in `settings`; empty when the settings are usable.
pub fn validate(settings: &HostSettings) -> Vec<Problem> {
    let mut v = Validator::default();
    v.host_name(settings);
    v.hardware(settings);
    v.kernel(settings);
    v.boot(settings);
    v.storage(settings);
    v.dual_boot(settings);
    v.shared_group(settings);
    v.security(settings);
    v.nix(settings);
    v.output(settings);
    v.users(settings);
    let mut problems = v.problems;
    problems.extend(super::unlock::problems(settings));
    problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

/// Which characters a string may hold beyond the always-forbidden control
/// characters (newline, NUL, …).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    /// Free text written inside quotes (menu titles, labels): no `"`, no `\`.
    Quoted,
    /// A single token (kernel parameter, mount option, module name): also no
    /// white space.
    Token,
}

impl Validator {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reject what would break a generated file; returns whether `s` is clean.
    fn text(&mut self, path: &str, s: &str, kind: Text) -> bool {
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            let what = match c {
                '\n' => "a newline".to_string(),
                '\0' => "a NUL byte".to_string(),
                '\r' => "a carriage return".to_string(),
                '\t' => "a tab".to_string(),
                c => format!("the control character U+{:04X}", c as u32),
            };
            self.push(
                path,
                format!(
                    "must not contain {what} (it would break the generated files); got {}",
                    show(s)
                ),
            );
            return false;
        }
        if s.contains('"') || s.contains('\\') {
            self.push(
                path,
                format!(
                    "must not contain '\"' or '\\' (rEFInd, fstab and the kernel command line cannot quote them); got {}",
                    show(s)
                ),
            );
            return false;
        }
        if kind == Text::Token && s.chars().any(char::is_whitespace) {
            self.push(
                path,
                format!(
                    "must not contain white space (it would split into several values); got {}; give each value as its own list item",
                    show(s)
                ),
            );
            return false;
        }
        true
    }

    /// Non-empty text of `kind`.
    fn non_empty_text(&mut self, path: &str, s: &str, kind: Text, example: &str) -> bool {
        if s.is_empty() {
            self.push(path, format!("must not be empty; for example {example}"));
            return false;
        }
        self.text(path, s, kind)
    }

    /// An absolute, normalized path that is safe in generated files.
    fn abs_path(&mut self, path: &str, p: &Utf8Path) -> bool {
        self.abs_path_under(path, p, "/")
    }

    /// Like [`Self::abs_path`]; a relative path gets `prefix` in the suggested fix.
    fn abs_path_under(&mut self, path: &str, p: &Utf8Path, prefix: &str) -> bool {
        let s = p.as_str();
        if s.is_empty() {
            self.push(path, "must be an absolute path, got an empty string");
            return false;
        }
        if !self.text(path, s, Text::Token) {
            return false;
        }
        if !p.is_absolute() {
            self.push(
                path,
                format!(
                    "must be an absolute path, got {}; did you mean {}?",
                    show(s),
                    show(&format!("{prefix}{}", s.trim_start_matches("./")))
                ),
            );
            return false;
        }
        let normal = normalize(p);
        if normal != s {
            self.push(
                path,
                format!(
                    "must be a normalized absolute path (no '.', '..', '//' or trailing '/'), got {}; write {}",
                    show(s),
                    show(&normal)
                ),
            );
            return false;
        }
        true
    }

    fn host_name(&mut self, s: &HostSettings) {
        let name = &s.host_name;
        let path = "hostName";
        if name.is_empty() {
            self.push(
                path,
                "must not be empty; use letters, digits and '-', such as \"surface\"",
            );
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            self.push(
                path,
                format!(
                    "must hold only ASCII letters, digits and '-' (a DNS label, as networking.hostName wants), found {}; got {}",
                    show(&c.to_string()),
                    show(name)
                ),
            );
        } else if name.len() > 63 {
            self.push(
                path,
                format!(
                    "is {} characters long; a host name is at most 63 (a DNS label)",
                    name.len()
                ),
            );
        } else if name.starts_with('-') || name.ends_with('-') {
            self.push(
                path,
                format!(
                    "must start and end with a letter or digit, got {}",
                    show(name)
                ),
            );
        }
    }

    fn hardware(&mut self, s: &HostSettings) {
        for (i, m) in s.hardware.extra_initrd_modules.iter().enumerate() {
            let path = format!("hardware.extraInitrdModules[{i}]");
            if m.is_empty() {
                self.push(
                    &path,
                    "must not be empty; give a kernel module name such as \"nvme\"",
                );
            } else if let Some(c) = m
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                self.push(
                    &path,
                    format!(
                        "is not a kernel module name (found {}); use letters, digits, '_' and '-', such as \"nvme\"",
                        show(&c.to_string())
                    ),
                );
            }
        }
        dupes(
            &mut self.problems,
            s.hardware
                .extra_initrd_modules
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("hardware.extraInitrdModules[{i}]"), m.as_str())),
            "hardware.extraInitrdModules",
            "module",
        );
    }

    fn kernel(&mut self, s: &HostSettings) {
        if s.kernel.source == KernelSource::LinuxSurface
            && s.hardware.profile != HardwareProfile::SurfacePro8
        {
            self.push(
                "kernel.source",
                format!(
                    "\"linux-surface\" is only for Surface devices, but hardware.profile is {}; use \"nixos-default\" or \"nixos-latest\"",
                    show(&profile_name(s.hardware.profile))
                ),
            );
        }
        for (i, p) in s.kernel.params.iter().enumerate() {
            let path = format!("kernel.params[{i}]");
            if self.non_empty_text(
                &path,
                p,
                Text::Token,
                "\"quiet\" or \"mem_sleep_default=deep\"",
            ) && (p.starts_with('=') || p.starts_with('-'))
            {
                self.push(
                    &path,
                    format!(
                        "is not a kernel parameter, got {}; write name or name=value, such as \"quiet\"",
                        show(p)
                    ),
                );
            }
        }
    }

    fn boot(&mut self, s: &HostSettings) {
        let b = &s.boot;
        if b.timeout < -1 {
            self.push(
                "boot.timeout",
                format!(
                    "must be -1 (boot at once unless a key is held), 0 (boot at once) or a number of seconds, got {}",
                    b.timeout
                ),
            );
        }
        if b.default_entry == DefaultEntry::Kinoite && s.dual_boot.kinoite.is_none() {
            self.push(
                "boot.defaultEntry",
                super::hints::explained(
                    "boot.defaultEntry",
                    "is \"kinoite\" but dualBoot.kinoite is not set; describe the Kinoite side under dualBoot.kinoite, or use \"nixos\" or \"last-booted\"".into(),
                ),
            );
        }
        let esp = &b.esp;
        if self.abs_path("boot.esp.mountPoint", &esp.mount_point) {
            let mp = esp.mount_point.as_str();
            if mp == "/" || mp == "/nix" || mp.starts_with("/nix/") {
                self.push(
                    "boot.esp.mountPoint",
                    format!(
                        "cannot be {}: the ESP is a small FAT partition; use \"/boot/efi\" (or \"/boot\" or \"/efi\")",
                        show(mp)
                    ),
                );
            }
        }
        if self.abs_path_under("boot.esp.device", &esp.device, "/dev/")
            && !esp.device.starts_with("/dev")
        {
            self.push(
                "boot.esp.device",
                format!(
                    "must be a block device under /dev, got {}; use a stable path such as \"/dev/disk/by-partlabel/ESP\"",
                    show(esp.device.as_str())
                ),
            );
        }
        if esp.fs_type != "vfat" {
            self.push(
                "boot.esp.fsType",
                format!(
                    "must be \"vfat\": UEFI firmware reads only FAT file systems, got {}",
                    show(&esp.fs_type)
                ),
            );
        }
        if esp.size_mib < ESP_MIN_SIZE_MIB {
            self.push(
                "boot.esp.sizeMib",
                format!(
                    "must be at least {ESP_MIN_SIZE_MIB} MiB (FAT32 needs 32 MiB, and each generation's kernel and initrd need room), got {}; 1024 is a good size",
                    esp.size_mib
                ),
            );
        }
    }

    fn storage(&mut self, s: &HostSettings) {
        let st = &s.storage;
        let luks = &st.luks;
        if luks.name.is_empty() {
            self.push(
                "storage.luks.name",
                "must not be empty; it names /dev/mapper/<name>, such as \"cryptroot\"",
            );
        } else if luks.name.len() > 127
            || luks.name == "."
            || luks.name == ".."
            || luks
                .name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "_.+-".contains(c)))
        {
            self.push(
                "storage.luks.name",
                format!(
                    "is not a usable device-mapper name, got {}; use up to 127 letters, digits, '_', '.', '+' or '-', such as \"cryptroot\"",
                    show(&luks.name)
                ),
            );
        }
        if self.abs_path_under("storage.luks.device", &luks.device, "/dev/")
            && !luks.device.starts_with("/dev")
        {
            self.push(
                "storage.luks.device",
                format!(
                    "must be a block device under /dev, got {}; use a stable path such as \"/dev/disk/by-partlabel/pool\"",
                    show(luks.device.as_str())
                ),
            );
        }
        self.argon2id(&luks.argon2id);

        if st.btrfs_label.len() > 255 {
            self.push(
                "storage.btrfsLabel",
                format!(
                    "is {} bytes long; a btrfs label is at most 255",
                    st.btrfs_label.len()
                ),
            );
        } else {
            self.non_empty_text(
                "storage.btrfsLabel",
                &st.btrfs_label,
                Text::Token,
                "\"pool\"",
            );
        }

        self.subvolumes(s);

        match st.swap.kind {
            SwapKind::File | SwapKind::Zram if st.swap.size_mib == 0 => self.push(
                "storage.swap.sizeMib",
                "must be more than 0 when storage.swap.kind is \"file\" or \"zram\"; give a size in MiB such as 8192, or set kind to \"none\"",
            ),
            _ => {}
        }
    }

    fn argon2id(&mut self, a: &Argon2id) {
        let base = "storage.luks.argon2id";
        if !(ARGON2_MIN_MEMORY_KIB..=ARGON2_MAX_MEMORY_KIB).contains(&a.memory_kib) {
            self.push(
                format!("{base}.memoryKib"),
                format!(
                    "must be between {ARGON2_MIN_MEMORY_KIB} and {ARGON2_MAX_MEMORY_KIB} KiB (4 GiB), what cryptsetup accepts, got {}; 1048576 (1 GiB) is cryptsetup's default",
                    a.memory_kib
                ),
            );
        }
        if a.iterations < ARGON2_MIN_ITERATIONS {
            self.push(
                format!("{base}.iterations"),
                format!(
                    "must be at least {ARGON2_MIN_ITERATIONS}, cryptsetup's minimum for argon2id, got {}",
                    a.iterations
                ),
            );
        }
        if !(ARGON2_MIN_PARALLELISM..=ARGON2_MAX_PARALLELISM).contains(&a.parallelism) {
            self.push(
                format!("{base}.parallelism"),
                format!(
                    "must be between {ARGON2_MIN_PARALLELISM} and {ARGON2_MAX_PARALLELISM}, what cryptsetup accepts, got {}",
                    a.parallelism
                ),
            );
        }
    }

    fn subvolumes(&mut self, s: &HostSettings) {
        let subs = &s.storage.subvolumes;
        if subs.is_empty() {
            self.push(
                "storage.subvolumes",
                "must not be empty; add at least { \"name\": \"@\", \"mountPoint\": \"/\" }",
            );
            return;
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        // The ESP takes part in the duplicate check so a subvolume cannot hide it.
        let mut mounts: HashMap<&str, String> = HashMap::new();
        let esp = s.boot.esp.mount_point.as_str();
        if normalize(&s.boot.esp.mount_point) == esp
            && esp != "/"
            && esp != "/nix"
            && !esp.starts_with("/nix/")
        {
            mounts.insert(
                s.boot.esp.mount_point.as_str(),
                "boot.esp.mountPoint".into(),
            );
        }
        let mut root = None;
        for (i, sv) in subs.iter().enumerate() {
            let base = format!("storage.subvolumes[{i}]");
            let name_path = format!("{base}.name");
            if self.subvolume_name(&name_path, &sv.name) {
                if let Some(first) = names.get(sv.name.as_str()) {
                    self.push(
                        &name_path,
                        format!(
                            "{} is already the name of storage.subvolumes[{first}]; give each subvolume its own name",
                            show(&sv.name)
                        ),
                    );
                } else {
                    names.insert(&sv.name, i);
                }
            }
            let mp_path = format!("{base}.mountPoint");
            if let Some(mp) = &sv.mount_point {
                if sv.owner == SubvolumeOwner::Kinoite {
                    self.push(
                        &mp_path,
                        format!(
                            "must not be set: subvolume {} is owned by \"kinoite\" and NixOS never mounts it; remove mountPoint, or set owner to \"shared\"",
                            show(&sv.name)
                        ),
                    );
                } else if self.abs_path(&mp_path, mp) {
                    if let Some(first) = mounts.get(mp.as_str()) {
                        self.push(
                            &mp_path,
                            format!(
                                "{} is already the mount point of {first}; give each a mount point of its own",
                                show(mp.as_str())
                            ),
                        );
                    } else {
                        mounts.insert(mp.as_str(), base.clone());
                    }
                    if mp.as_str() == "/" && root.is_none() {
                        root = Some((i, sv.owner));
                    }
                }
            }
            for (j, opt) in sv.mount_options.iter().enumerate() {
                self.mount_option(&format!("{base}.mountOptions[{j}]"), opt);
            }
        }
        match root {
            None => self.push(
                "storage.subvolumes",
                "no subvolume is mounted at \"/\"; add { \"name\": \"@\", \"mountPoint\": \"/\" }",
            ),
            Some((i, owner)) if owner != SubvolumeOwner::Nixos => self.push(
                format!("storage.subvolumes[{i}].owner"),
                "the root file system (\"/\") must be owned by \"nixos\"; give NixOS its own root subvolume",
            ),
            Some(_) => {}
        }
    }

    fn subvolume_name(&mut self, path: &str, name: &str) -> bool {
        if name.is_empty() {
            self.push(path, "must not be empty; use a name such as \"@home\"");
            false
        } else if name == "." || name == ".." || name.len() > 255 {
            self.push(
                path,
                format!(
                    "is not a usable subvolume name, got {}; use a name such as \"@home\"",
                    show(name)
                ),
            );
            false
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "@_.+-".contains(*c)))
        {
            self.push(
                path,
                format!(
                    "must hold only letters, digits and '@', '_', '.', '+', '-' (subvolumes sit at the top of the pool), found {}; use a name such as \"@home\"",
                    show(&c.to_string())
                ),
            );
            false
        } else {
            true
        }
    }

    fn mount_option(&mut self, path: &str, opt: &str) {
        if !self.non_empty_text(path, opt, Text::Token, "\"noatime\"") {
            return;
        }
        if opt.contains(',') {
            let parts: Vec<String> = opt.split(',').map(show).collect();
            self.push(
                path,
                format!(
                    "holds several options, got {}; give each as its own list item: [{}]",
                    show(opt),
                    parts.join(", ")
                ),
            );
        } else if matches!(opt.split('=').next(), Some("subvol" | "subvolid")) {
            self.push(
                path,
                format!(
                    "must not set {}: bifrost adds subvol= from the subvolume's name; remove it",
                    show(opt)
                ),
            );
        }
    }

    /// A group name both shadow-utils (Kinoite's `groupadd`) and NixOS accept,
    /// and a gid that is neither root's nor `nogroup`'s.
    fn shared_group(&mut self, s: &HostSettings) {
        let g = &s.storage.shared_group;
        let ok_name = g.name.len() <= 32
            && g.name
                .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && g.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok_name {
            self.push(
                "storage.sharedGroup.name",
                format!(
                    "must be a group name (lower-case letters, digits, `_`, `-`, starting with a letter or `_`, at most 32), got {}",
                    show(&g.name)
                ),
            );
        }
        if g.gid == 0 || g.gid >= 65534 {
            self.push(
                "storage.sharedGroup.gid",
                format!(
                    "must be between 1 and 65533 (0 is root's group, 65534 and up are reserved), got {}; the default 2000 is free on stock NixOS and Fedora",
                    g.gid
                ),
            );
        }
    }

    fn dual_boot(&mut self, s: &HostSettings) {
        let Some(k) = &s.dual_boot.kinoite else {
            return;
        };
        self.abs_path("dualBoot.kinoite.entriesDir", &k.entries_dir);
        if !KINOITE_BOOT_FS_TYPES.contains(&k.boot_fs_type.as_str()) {
            self.push(
                "dualBoot.kinoite.bootFsType",
                format!(
                    "rEFInd has no driver for {}; use one of {}",
                    show(&k.boot_fs_type),
                    KINOITE_BOOT_FS_TYPES
                        .iter()
                        .map(|t| show(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        self.non_empty_text(
            "dualBoot.kinoite.title",
            &k.title,
            Text::Quoted,
            "\"Fedora Kinoite\"",
        );
    }

    fn security(&mut self, s: &HostSettings) {
        let fw = &s.security.firewall;
        for (list, ports) in [
            ("allowedTcpPorts", &fw.allowed_tcp_ports),
            ("allowedUdpPorts", &fw.allowed_udp_ports),
        ] {
            for (i, p) in ports.iter().enumerate() {
                if *p == 0 {
                    self.push(
                        format!("security.firewall.{list}[{i}]"),
                        "port 0 cannot be opened; use a port between 1 and 65535",
                    );
                }
            }
        }
        let sb = &s.security.secure_boot;
        match &sb.keys_path {
            None if sb.enable => self.push(
                "security.secureBoot.keysPath",
                "must be set when security.secureBoot.enable is true; give the folder holding mok.key and mok.crt (shim route) or db.key and db.crt (own keys), as `bifrost sb keys` makes them",
            ),
            Some(p) if self.abs_path("security.secureBoot.keysPath", p) && p.starts_with("/nix") => {
                self.push(
                    "security.secureBoot.keysPath",
                    format!(
                        "{} is in the Nix store, which every user can read, and the private signing key goes there; use a folder such as \"/etc/secureboot\"",
                        show(p.as_str())
                    ),
                )
            }
            Some(_) | None => {}
        }
        match &sb.shim {
            Some(p) => {
                self.abs_path("security.secureBoot.shim", p);
            }
            None if sb.enable
                && sb.route == SecureBootRoute::Shim
                && s.dual_boot.kinoite.is_none() =>
            {
                self.push(
                    "security.secureBoot.shim",
                    "must be set for the shim route when there is no Kinoite side whose shim (EFI/fedora/shimx64.efi) could be used; give a Microsoft-signed shimx64.efi, or set route to \"own-keys\"",
                )
            }
            None => {}
        }
    }

    fn nix(&mut self, s: &HostSettings) {
        let n = &s.nix;
        for (i, url) in n.substituters.iter().enumerate() {
            let path = format!("nix.substituters[{i}]");
            if self.non_empty_text(&path, url, Text::Token, "\"https://cache.example.org\"")
                && !url.contains("://")
            {
                self.push(
                    &path,
                    format!(
                        "must be a URL such as \"https://cache.example.org\", got {}",
                        show(url)
                    ),
                );
            }
        }
        for (i, key) in n.trusted_public_keys.iter().enumerate() {
            let path = format!("nix.trustedPublicKeys[{i}]");
            if !self.non_empty_text(
                &path,
                key,
                Text::Token,
                "\"cache.example.org-1:BASE64KEY=\"",
            ) {
                continue;
            }
            let ok = key.split_once(':').is_some_and(|(name, k)| {
                !name.is_empty()
                    && !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
            });
            if !ok {
                self.push(
                    &path,
                    format!(
                        "must be name:base64, as `nix key convert-secret-to-public` prints, such as \"cache.example.org-1:BASE64KEY=\"; got {}",
                        show(key)
                    ),
                );
            }
        }
        for (i, m) in n.build_machines.iter().enumerate() {
            let base = format!("nix.buildMachines[{i}]");
            self.non_empty_text(
                &format!("{base}.hostName"),
                &m.host_name,
                Text::Token,
                "\"builder.example.org\"",
            );
            if m.systems.is_empty() {
                self.push(
                    format!("{base}.systems"),
                    "must not be empty; list what it builds, such as [\"x86_64-linux\"]",
                );
            }
            for (j, sys) in m.systems.iter().enumerate() {
                let path = format!("{base}.systems[{j}]");
                if self.non_empty_text(&path, sys, Text::Token, "\"x86_64-linux\"")
                    && !sys.contains('-')
                {
                    self.push(
                        &path,
                        format!(
                            "must be a system type such as \"x86_64-linux\", got {}",
                            show(sys)
                        ),
                    );
                }
            }
            if let Some(u) = &m.ssh_user {
                self.non_empty_text(&format!("{base}.sshUser"), u, Text::Token, "\"builder\"");
            }
            if let Some(k) = &m.ssh_key {
                self.abs_path(&format!("{base}.sshKey"), k);
            }
            if m.max_jobs == 0 {
                self.push(
                    format!("{base}.maxJobs"),
                    "must be at least 1, or the machine never builds anything",
                );
            }
        }
    }

    fn output(&mut self, s: &HostSettings) {
        if self.abs_path("output.root", &s.output.root) && s.output.root.as_str() == "/" {
            self.push(
                "output.root",
                "must not be \"/\"; give a folder of its own, such as \"/mnt/kinoite/@images/a_nixos_host\"",
            );
        }
    }
}

impl Validator {
    /// A user or group name as shadow-utils and NixOS accept it (portable
    /// form: `[a-z_][a-z0-9_-]*`, at most 32 characters).
    fn account_name(&mut self, path: &str, name: &str, example: &str) -> bool {
        let ok = !name.is_empty()
            && name.len() <= 31
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            self.push(
                path,
                format!(
                    "is not a usable name, got {}; use up to 31 lowercase letters, digits, '_' and '-', starting with a letter, such as {example}",
                    show(name)
                ),
            );
        }
        ok
    }

    fn users(&mut self, s: &HostSettings) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut uids: HashMap<u32, usize> = HashMap::new();
        for (i, u) in s.users.iter().enumerate() {
            let base = format!("users[{i}]");
            let name_path = format!("{base}.name");
            if self.account_name(&name_path, &u.name, "\"alice\"") {
                if RESERVED_USERS.contains(&u.name.as_str())
                    || u.name.starts_with("nixbld")
                    || u.name.starts_with("systemd-")
                {
                    self.push(
                        &name_path,
                        format!(
                            "{} is a system account NixOS manages itself; give the person a name of their own, such as \"alice\" (administrators use sudo, not root)",
                            show(&u.name)
                        ),
                    );
                } else if let Some(first) = names.get(u.name.as_str()) {
                    self.push(
                        &name_path,
                        format!(
                            "{} is already the name of users[{first}]; give each user their own name",
                            show(&u.name)
                        ),
                    );
                } else {
                    names.insert(&u.name, i);
                }
            }
            let uid_path = format!("{base}.uid");
            if !USER_UIDS.contains(&u.uid) {
                self.push(
                    &uid_path,
                    format!(
                        "must be between {} and {} (the IDs of people; lower ones belong to system accounts), got {}; use 1000 for the first user, as Kinoite does",
                        USER_UIDS.start(),
                        USER_UIDS.end(),
                        u.uid
                    ),
                );
            } else if let Some(first) = uids.get(&u.uid) {
                self.push(
                    &uid_path,
                    format!(
                        "{} is already the uid of users[{first}]; two people with one uid own each other's files; give this user another, such as {}",
                        u.uid,
                        u.uid + 1
                    ),
                );
            } else {
                uids.insert(u.uid, i);
            }
            for (j, g) in u.groups.iter().enumerate() {
                let path = format!("{base}.groups[{j}]");
                if self.account_name(&path, g, "\"networkmanager\"") && g == "wheel" {
                    self.push(
                        &path,
                        "lists \"wheel\"; set \"admin\": true instead (it adds wheel and says what it means), and remove it from groups",
                    );
                }
            }
            dupes(
                &mut self.problems,
                u.groups
                    .iter()
                    .enumerate()
                    .map(|(j, g)| (format!("{base}.groups[{j}]"), g.as_str())),
                &format!("{base}.groups"),
                "group",
            );
            for (j, key) in u.ssh_authorized_keys.iter().enumerate() {
                let path = format!("{base}.sshAuthorizedKeys[{j}]");
                self.ssh_key(&path, key);
            }
        }
        if !s.users.iter().any(|u| u.admin) {
            let fix = match s.users.first() {
                Some(u) => format!("set \"admin\": true on {} (users[0])", show(&u.name)),
                None => "add one, such as { \"name\": \"alice\", \"uid\": 1000, \"admin\": true }"
                    .into(),
            };
            self.push(
                "users",
                format!(
                    "no user is an administrator, so nobody could log in and run sudo on the installed system (root has no password); {fix}"
                ),
            );
        }
    }

    fn ssh_key(&mut self, path: &str, key: &str) {
        if let Some(c) = key.chars().find(|c| c.is_control()) {
            self.push(
                path,
                format!(
                    "must be one authorized_keys line, without control characters (found U+{:04X}); give each key as its own list item",
                    c as u32
                ),
            );
            return;
        }
        let words: Vec<&str> = key.split_whitespace().collect();
        let found = words.windows(2).any(|w| {
            SSH_KEY_TYPES.contains(&w[0])
                && w[1].len() >= 16
                && w[1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        });
        if !found {
            self.push(
                path,
                format!(
                    "is not an SSH public key, got {}; paste the line of your id_ed25519.pub, such as \"ssh-ed25519 AAAAC3Nza… alice@laptop\"",
                    show(key)
                ),
            );
        }
    }
}

/// Report every value that repeats an earlier one.
fn dupes<'a>(
    problems: &mut Vec<Problem>,
    items: impl Iterator<Item = (String, &'a str)>,
    list: &str,
    what: &str,
) {
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (path, value) in items {
        if let Some(first) = seen.get(value) {
            problems.push(Problem {
                path,
                message: format!(
                    "{what} {} is already listed at {first}; remove the repeat from {list}",
                    show(value)
                ),
            });
        } else {
            seen.insert(value, path);
        }
    }
}

/// The form of `p` without `.`/`..` components, repeated or trailing `/`.
fn normalize(p: &Utf8Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.components() {
        match c {
            Utf8Component::Normal(n) => parts.push(n),
            Utf8Component::ParentDir => {
                parts.pop();
            }
            Utf8Component::RootDir | Utf8Component::CurDir | Utf8Component::Prefix(_) => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// A value quoted for a message: JSON escaping shows control characters.
fn show(s: &str) -> String {
    let shown = serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    const MAX: usize = 80;
    if shown.chars().count() > MAX {
        let head: String = shown.chars().take(MAX).collect();
        format!("{head}…\" ({} bytes)", s.len())
    } else {
        shown
    }
}

fn profile_name(p: HardwareProfile) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface() -> HostSettings {
        let text = include_str!("../../../hosts/surface-pro-8/host.json");
        serde_json::from_str(text).unwrap()
    }

    fn paths(s: &HostSettings) -> Vec<String> {
        validate(s).into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn the_seed_host_is_valid() {
        assert_eq!(validate(&surface()), vec![]);
    }

    #[test]
    fn collects_every_problem_in_document_order() {
        let mut s = surface();
        s.host_name = "bad_name".into();
        s.boot.esp.fs_type = "ext4".into();
        s.storage.subvolumes[1].mount_point = Some("home".into());
        s.storage.luks.argon2id.parallelism = 8;
        assert_eq!(
            paths(&s),
            [
                "hostName",
                "boot.esp.fsType",
                "storage.luks.argon2id.parallelism",
                "storage.subvolumes[1].mountPoint",
            ]
        );
        let msg = &validate(&s)[3].message;
        assert!(msg.contains("absolute path, got \"home\""), "{msg}");
        assert!(msg.contains("did you mean \"/home\"?"), "{msg}");
    }

    /// Problems of one setting changed by `change`, as (path, message).
    fn refused(change: impl FnOnce(&mut HostSettings)) -> Vec<(String, String)> {
        let mut s = surface();
        change(&mut s);
        validate(&s)
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn argon2id_limits_match_cryptsetup() {
        let set = |m, i, p| {
            move |s: &mut HostSettings| {
                let a = &mut s.storage.luks.argon2id;
                (a.memory_kib, a.iterations, a.parallelism) = (m, i, p);
            }
        };
        let lowest = (
            ARGON2_MIN_MEMORY_KIB,
            ARGON2_MIN_ITERATIONS,
            ARGON2_MIN_PARALLELISM,
        );
        assert_eq!(refused(set(lowest.0, lowest.1, lowest.2)), vec![]);
        assert_eq!(
            refused(set(ARGON2_MAX_MEMORY_KIB, u32::MAX, ARGON2_MAX_PARALLELISM)),
            vec![]
        );
        let p = refused(set(
            ARGON2_MIN_MEMORY_KIB - 1,
            ARGON2_MIN_ITERATIONS - 1,
            ARGON2_MIN_PARALLELISM - 1,
        ));
        let got: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            got,
            [
                "storage.luks.argon2id.memoryKib",
                "storage.luks.argon2id.iterations",
                "storage.luks.argon2id.parallelism"
            ]
        );
        assert!(p[0].1.contains("cryptsetup"), "{}", p[0].1);
        let p = refused(set(
            ARGON2_MAX_MEMORY_KIB + 1,
            ARGON2_MIN_ITERATIONS,
            ARGON2_MAX_PARALLELISM + 1,
        ));
        let got: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            got,
            [
                "storage.luks.argon2id.memoryKib",
                "storage.luks.argon2id.parallelism"
            ]
        );
    }

    #[test]
    fn luks_name_must_be_a_device_mapper_name() {
        for bad in ["", "a/b", "crypt root", ".", "..", &"x".repeat(128)] {
            let p = refused(|s| s.storage.luks.name = bad.to_string());
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].0, "storage.luks.name", "{bad:?}");
            assert!(p[0].1.contains("\"cryptroot\""), "{}", p[0].1);
        }
        assert_eq!(
            refused(|s| s.storage.luks.name = "crypt-root_2.x".into()),
            vec![]
        );
    }

    #[test]
    fn subvolume_names_sit_at_the_top_of_the_pool() {
        for bad in ["", "@a/b", "@a,b", "@a b", ".", "..", &"x".repeat(256)] {
            let p = refused(|s| s.storage.subvolumes[1].name = bad.to_string());
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].0, "storage.subvolumes[1].name", "{bad:?}");
            assert!(p[0].1.contains("\"@home\""), "{}", p[0].1);
        }
    }

    #[test]
    fn a_subvolume_name_is_listed_once() {
        let p = refused(|s| s.storage.subvolumes[2].name = s.storage.subvolumes[0].name.clone());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "storage.subvolumes[2].name");
        assert!(p[0].1.contains("storage.subvolumes[0]"), "{}", p[0].1);
        assert!(p[0].1.contains("its own name"), "{}", p[0].1);
    }

    #[test]
    fn a_mount_point_belongs_to_one_subvolume() {
        let p = refused(|s| s.storage.subvolumes[2].mount_point = Some("/".into()));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "storage.subvolumes[2].mountPoint");
        assert!(p[0].1.contains("storage.subvolumes[0]"), "{}", p[0].1);
    }

    #[test]
    fn mount_points_are_absolute() {
        let p = refused(|s| s.storage.subvolumes[1].mount_point = Some("home".into()));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "storage.subvolumes[1].mountPoint");
        assert!(p[0].1.contains("did you mean \"/home\"?"), "{}", p[0].1);
    }

    #[test]
    fn mount_options_leave_the_subvolume_to_bifrost() {
        for bad in ["subvol=@x", "subvolid=5", "subvol"] {
            let p = refused(|s| s.storage.subvolumes[1].mount_options = vec![bad.into()]);
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].0, "storage.subvolumes[1].mountOptions[0]", "{bad:?}");
            assert!(p[0].1.contains("remove it"), "{}", p[0].1);
        }
        assert_eq!(
            refused(|s| s.storage.subvolumes[1].mount_options = vec!["subvolumes".into()]),
            vec![]
        );
    }

    #[test]
    fn duplicates_name_the_first_occurrence() {
        let mut s = surface();
        s.storage.subvolumes[2].name = "@home".into();
        s.storage.subvolumes[3].mount_point = Some("/home".into());
        let p = validate(&s);
        assert_eq!(p[0].path, "storage.subvolumes[2].name");
        assert!(
            p[0].message.contains("storage.subvolumes[1]"),
            "{}",
            p[0].message
        );
        assert_eq!(p[1].path, "storage.subvolumes[3].mountPoint");
        assert!(
            p[1].message.contains("storage.subvolumes[1]"),
            "{}",
            p[1].message
        );
    }

    #[test]
    fn a_subvolume_cannot_take_the_esp_mount_point() {
        let mut s = surface();
        s.storage.subvolumes[3].mount_point = Some("/boot/efi".into());
        let p = validate(&s);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("boot.esp.mountPoint"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn root_must_exist_and_belong_to_nixos() {
        let mut s = surface();
        s.storage.subvolumes[0].mount_point = None;
        assert_eq!(paths(&s), ["storage.subvolumes"]);
        let mut s = surface();
        s.storage.subvolumes[0].owner = SubvolumeOwner::Shared;
        assert_eq!(paths(&s), ["storage.subvolumes[0].owner"]);
        assert!(validate(&s)[0].message.contains("owned by \"nixos\""));
    }

    #[test]
    fn secure_boot_keys_stay_out_of_the_nix_store() {
        let p = refused(|s| {
            s.security.secure_boot.enable = true;
            s.security.secure_boot.keys_path = Some("/nix/store/keys".into());
        });
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "security.secureBoot.keysPath");
        assert!(p[0].1.contains("\"/etc/secureboot\""), "{}", p[0].1);
    }

    #[test]
    fn cross_field_rules() {
        let mut s = surface();
        s.hardware.profile = HardwareProfile::GenericX86_64Uefi;
        s.security.secure_boot.enable = true;
        s.dual_boot.kinoite = None;
        s.boot.default_entry = DefaultEntry::Kinoite;
        s.storage.subvolumes[5].mount_point = Some("/kinoite".into());
        assert_eq!(
            paths(&s),
            [
                "kernel.source",
                "boot.defaultEntry",
                "storage.subvolumes[5].mountPoint",
                "security.secureBoot.keysPath",
                "security.secureBoot.shim"
            ]
        );
    }

    #[test]
    fn strings_that_would_break_generated_files() {
        let mut s = surface();
        s.kernel.params = vec!["quiet".into(), "a\"b".into(), "x\ny".into(), "a b".into()];
        s.dual_boot.kinoite.as_mut().unwrap().title = "Fedora\0".into();
        s.storage.subvolumes[1].mount_options =
            vec!["noatime,compress=zstd".into(), "subvol=@x".into()];
        let p = validate(&s);
        let got: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            got,
            [
                "kernel.params[1]",
                "kernel.params[2]",
                "kernel.params[3]",
                "storage.subvolumes[1].mountOptions[0]",
                "storage.subvolumes[1].mountOptions[1]",
                "dualBoot.kinoite.title"
            ]
        );
        assert!(p[1].message.contains("newline"), "{}", p[1].message);
        assert!(p[5].message.contains("NUL"), "{}", p[5].message);
    }

    #[test]
    fn host_name_rules() {
        for (name, ok) in [
            ("a", true),
            ("surface-8", true),
            (&"x".repeat(63), true),
            (&"x".repeat(64), false),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("a.b", false),
            ("ä", false),
        ] {
            let mut s = surface();
            s.host_name = name.to_string();
            assert_eq!(validate(&s).is_empty(), ok, "{name:?}");
        }
    }

    #[test]
    fn users_need_an_admin_and_clean_names() {
        use crate::spec::User;
        let user = |name: &str, uid: u32, admin: bool| User {
            name: name.into(),
            uid,
            groups: Vec::new(),
            ssh_authorized_keys: Vec::new(),
            admin,
        };
        let mut s = surface();
        s.users = vec![];
        assert_eq!(paths(&s), ["users"]);
        s.users = vec![user("alice", 1000, false)];
        let p = validate(&s);
        assert_eq!(p[0].path, "users");
        assert!(
            p[0].message.contains("\"admin\": true on \"alice\""),
            "{}",
            p[0].message
        );
        s.users = vec![
            user("alice", 1000, true),
            user("alice", 1001, false),
            user("bob", 1000, false),
            user("root", 999, false),
            user("1x", 70000, false),
        ];
        assert_eq!(
            paths(&s),
            [
                "users[1].name",
                "users[2].uid",
                "users[3].name",
                "users[3].uid",
                "users[4].name",
                "users[4].uid"
            ]
        );
        let mut u = user("carol", 1002, true);
        u.groups = vec!["video".into(), "wheel".into(), "video".into(), "Bad".into()];
        u.ssh_authorized_keys = vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl c@x"
                .into(),
            "from=\"10.0.0.0/8\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ c@y".into(),
            "ssh-ed25519".into(),
        ];
        s.users = vec![u];
        assert_eq!(
            paths(&s),
            [
                "users[0].groups[1]",
                "users[0].groups[3]",
                "users[0].groups[2]",
                "users[0].sshAuthorizedKeys[2]"
            ]
        );
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/a//b/./c/../d/".into()), "/a/b/d");
        assert_eq!(normalize("/".into()), "/");
    }
}
