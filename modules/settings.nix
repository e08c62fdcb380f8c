# bifrost.settings: the host settings document as NixOS options.
#
# The tree mirrors the Rust types in bifrost-core/src/spec/types.rs (the
# single source of truth): same camelCase names, same enums, same defaults.
# tests/tests/module_eval.rs compares this tree with `bifrost schema`, so
# the two cannot drift. `bifrost.settings = lib.importJSON ./host.json;`
# loads a host file as is.
{lib, ...}: let
  inherit (lib) mkOption types literalExpression;

  opt = type: default: description: example:
    mkOption {inherit type default description example;};

  subvolume = types.submodule {
    options = {
      name = mkOption {
        type = types.str;
        description = "Subvolume name in the pool, such as `@home`.";
        example = "@home";
      };
      mountPoint = opt (types.nullOr types.str) null "Absolute mount point in NixOS, or `null` for a subvolume NixOS does not mount." "/home";
      mountOptions = opt (types.listOf types.str) ["compress=zstd" "noatime"] "Mount options besides `subvol=`, which bifrost adds." ["compress=zstd:1" "noatime"];
      owner = opt (types.enum ["nixos" "shared" "kinoite"]) "nixos" "Who owns the subvolume's data: `nixos`; `shared` with Kinoite (mounted, never recreated); `kinoite` (never touched)." "shared";
    };
  };

  buildMachine = types.submodule {
    options = {
      hostName = mkOption {
        type = types.str;
        description = "Host name or address of the remote builder, reached over SSH.";
        example = "builder.example.org";
      };
      systems = opt (types.listOf types.str) ["x86_64-linux"] "System types it builds." ["x86_64-linux" "i686-linux"];
      sshUser = opt (types.nullOr types.str) null "SSH user on the builder." "nixbuild";
      sshKey = opt (types.nullOr types.str) null "SSH private key file on this machine." "/root/.ssh/id_builder";
      maxJobs = opt types.ints.unsigned 1 "Parallel jobs on that machine." 8;
    };
  };

  kinoite = types.submodule {
    options = {
      bootVolume = mkOption {
        type = types.str;
        description = "Kinoite's `/boot`: `UUID=<file-system UUID>` (as in Fedora's `/etc/fstab`; Fedora gives `/boot` no label), `PARTUUID=<GPT partition GUID>`, `LABEL=<label>` or a bare label.";
        example = "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b";
      };
      entriesDir = opt types.str "/loader/entries" "Folder of Boot Loader Specification entries on that volume, as ostree writes them." "/loader/entries";
      bootFsType = opt types.str "ext4" "File system of Kinoite's `/boot` (rEFInd loads the matching driver)." "ext4";
      title = opt types.str "Fedora Kinoite" "Menu title of the Kinoite entry." "Kinoite";
      mode = opt (types.enum ["chainload" "direct"]) "chainload" "How rEFInd boots Kinoite: `chainload` starts Fedora's own boot loader (`EFI/fedora/shimx64.efi`, else `grubx64.efi`), always current; `direct` copies its BLS entries into the menu (keep them current with `bifrost esp refresh-kinoite` on Kinoite)." "direct";
    };
  };

  user = types.submodule {
    options = {
      name = mkOption {
        type = types.str;
        description = "Login name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 31 characters.";
        example = "alice";
      };
      uid = opt types.ints.unsigned 1000 "User ID; 1000 is Kinoite's first user, so files on the shared subvolume belong to the same person on both systems." 1001;
      groups = opt (types.listOf types.str) [] "Supplementary groups; administrators get `wheel` from `admin`." ["video" "networkmanager"];
      sshAuthorizedKeys = opt (types.listOf types.str) [] "SSH public keys allowed to log in as this user, one `authorized_keys` line each." ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… alice@laptop"];
      admin = opt types.bool false "Administrator: member of `wheel`, may use sudo with their own password." true;
    };
  };

  section = description: options:
    mkOption {
      inherit description;
      type = types.submodule {inherit options;};
      default = {};
      example = {};
    };
in {
  options.bifrost.settings = mkOption {
    description = ''
      The host settings: the one description of this machine that both the
      NixOS configuration and the `bifrost` binary read. Mirrors
      `bifrost schema`; load a host file with `lib.importJSON ./host.json`.
    '';
    example = literalExpression "lib.importJSON ./hosts/surface-pro-8/host.json";
    type = types.submodule {
      options = {
        "$schema" = opt (types.nullOr types.str) null "Link to the JSON Schema, for editors. Ignored by bifrost." "./host-settings.schema.json";
        hostName = mkOption {
          type = types.strMatching "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
          description = "Host name (also `networking.hostName`): letters, digits and `-`, at most 63 characters.";
          example = "surface-pro-8";
        };
        hardware = mkOption {
          description = "Which device this is.";
          example = {profile = "surface-pro-8";};
          type = types.submodule {
            options = {
              profile = mkOption {
                type = types.enum ["surface-pro-8" "generic-x86_64-uefi"];
                description = "Device profile: selects the nixos-hardware module and the initrd kernel modules. `surface-pro-8` needs `nixosModules.surface-pro-8` (it imports nixos-hardware's `microsoft-surface-pro-intel`).";
                example = "surface-pro-8";
              };
              extraInitrdModules = opt (types.listOf types.str) [] "Extra kernel modules for the initrd (`boot.initrd.availableKernelModules`), beyond what the profile needs." ["virtio_pci" "virtio_blk"];
            };
          };
        };
        kernel = section "Which kernel to boot." {
          source = opt (types.enum ["linux-surface" "nixos-default" "nixos-latest"]) "nixos-default" "Where the kernel comes from: `linux-surface` (nixos-hardware, Surface profiles only), `nixos-default` (`pkgs.linuxPackages`) or `nixos-latest` (`pkgs.linuxPackages_latest`)." "linux-surface";
          surfaceVersion = opt (types.enum ["longterm" "stable"]) "longterm" "linux-surface branch (`hardware.microsoft-surface.kernelVersion`); only used with `source = \"linux-surface\"`." "stable";
          params = opt (types.listOf types.str) [] "Extra kernel command-line parameters (`boot.kernelParams`)." ["console=ttyS0"];
        };
        boot = section "Boot loader (rEFInd) and EFI system partition." {
          timeout = opt types.int 5 "Seconds rEFInd waits before booting the default entry (0 boots at once; -1 boots at once unless a key is held)." 3;
          defaultEntry = opt (types.enum ["nixos" "kinoite" "last-booted"]) "nixos" "Which entry boots by default: `nixos` (the newest generation), `kinoite` (needs `dualBoot.kinoite`) or `last-booted` (the system booted last, else the newest generation)." "last-booted";
          maxGenerations = opt types.ints.unsigned 10 "How many NixOS generations get a menu entry (newest first); 0 keeps them all." 5;
          removable = opt types.bool false "Install rEFInd at the firmware fallback path `EFI/BOOT/BOOTX64.EFI`." true;
          textOnly = opt types.bool false "Text-only menu (no graphics, no icons)." true;
          esp = section "The EFI system partition." {
            mountPoint = opt types.str "/boot/efi" "Where the ESP is mounted." "/efi";
            device = opt types.str "/dev/disk/by-partlabel/ESP" "Block device of the ESP, preferably a stable `/dev/disk/by-*` path." "/dev/disk/by-uuid/7A3B-1C2D";
            fsType = opt types.str "vfat" "File system type; UEFI firmware reads only FAT, so this must be `vfat`." "vfat";
            sizeMib = opt types.ints.unsigned 1024 "Size of the ESP when bifrost partitions a fresh disk, in MiB." 512;
          };
        };
        storage = mkOption {
          description = "LUKS2 container and the btrfs subvolumes inside it.";
          example = literalExpression ''{ luks.device = "/dev/disk/by-partlabel/pool"; subvolumes = [ { name = "@"; mountPoint = "/"; } ]; }'';
          type = types.submodule {
            options = {
              luks = mkOption {
                description = "The LUKS2 container holding the btrfs pool.";
                example = {device = "/dev/disk/by-partlabel/pool";};
                type = types.submodule {
                  options = {
                    name = opt types.str "cryptroot" "Mapper name: the pool opens as `/dev/mapper/<name>`." "cryptroot";
                    device = mkOption {
                      type = types.str;
                      description = "Encrypted partition, preferably a stable `/dev/disk/by-*` path.";
                      example = "/dev/disk/by-partlabel/pool";
                    };
                    allowDiscards = opt types.bool true "Pass discards (TRIM) through dm-crypt." false;
                    argon2id = section "Argon2id key-derivation cost (`cryptsetup luksFormat --pbkdf argon2id`)." {
                      memoryKib = opt types.ints.unsigned 1048576 "Memory cost in KiB (`--pbkdf-memory`): 32 to 4194304." 524288;
                      iterations = opt types.ints.unsigned 4 "Time cost in iterations (`--pbkdf-force-iterations`): 4 or more." 6;
                      parallelism = opt types.ints.unsigned 4 "Parallel threads (`--pbkdf-parallel`): 1 to 4." 2;
                    };
                    unlock = section "How the container unlocks at boot: the passphrase, or the TPM (enroll it with `bifrost tpm enroll`); the passphrase always stays as the fallback." {
                      method = opt (types.enum ["passphrase" "tpm2" "tpm2-pin"]) "passphrase" "`passphrase` (typed at boot), `tpm2` (the TPM releases the key when the PCRs match; systemd initrd), or `tpm2-pin` (the same, and the TPM also asks for a PIN)." "tpm2";
                      tpm2Pcrs = opt (types.listOf (types.ints.between 0 23)) [7] "PCRs the TPM2 key is sealed to (0 to 23); 7 is the Secure Boot state. Pass the same list to `bifrost tpm enroll --pcrs`." [7];
                    };
                  };
                };
              };
              btrfsLabel = opt types.str "pool" "btrfs file-system label inside the container." "pool";
              subvolumes = mkOption {
                type = types.listOf subvolume;
                description = "btrfs subvolumes and where they are mounted.";
                example = literalExpression ''[ { name = "@"; mountPoint = "/"; } { name = "@shared"; mountPoint = "/shared"; owner = "shared"; } ]'';
              };
              swap = section "Swap." {
                kind = opt (types.enum ["none" "file" "zram"]) "none" "Kind of swap: none, a swap file in its own `@swap` subvolume, or compressed RAM (`zramSwap`)." "file";
                sizeMib = opt types.ints.unsigned 0 "Size in MiB (for `file` and `zram`)." 8192;
              };
              sharedGroup = section "The group owning the shared subvolume on both systems (on Kinoite: `groupadd -g <gid> <name>`)." {
                name = opt types.str "shared" "Group name (`users.groups.<name>`)." "family";
                gid = opt types.ints.unsigned 2000 "Group id, the same on NixOS and on Kinoite." 2001;
              };
            };
          };
        };
        dualBoot = section "The other operating system on the same disk, if any." {
          kinoite = opt (types.nullOr kinoite) null "Fedora Kinoite beside NixOS, booted by rEFInd from its own `/boot`." {bootVolume = "kinoite-boot";};
        };
        desktop = section "Graphical desktop." {
          plasma6 = opt types.bool false "KDE Plasma 6 with SDDM." true;
        };
        security = section "Firewall, audit logging and Secure Boot." {
          firewall = section "nftables firewall." {
            enable = opt types.bool true "Enable the firewall (nftables backend)." false;
            allowedTcpPorts = opt (types.listOf types.port) [] "TCP ports open to the network." [22];
            allowedUdpPorts = opt (types.listOf types.port) [] "UDP ports open to the network." [5353];
          };
          audit = opt types.bool false "Linux audit logging (auditd)." true;
          secureBoot = section "Secure Boot." {
            enable = opt types.bool false "Sign rEFInd and the kernels with the keys below." true;
            keysPath = opt (types.nullOr types.str) null "Folder with the signing keys, read at install time (never copied into the Nix store): `mok.key`/`mok.crt` for the shim route, `db.key`/`db.crt` for own keys (`bifrost sb keys`); required when enabled." "/etc/secureboot";
            route = opt (types.enum ["shim" "own-keys"]) "shim" "How the firmware comes to trust the signed rEFInd: `shim` (a Microsoft-signed shim starts it; the key is in shim's MOK list) or `own-keys` (the key is in the firmware's db)." "own-keys";
            shim = opt (types.nullOr types.str) null "Microsoft-signed shim for the shim route; null: Fedora's `EFI/fedora/shimx64.efi` on the ESP." "/run/shim/shimx64.efi";
          };
        };
        packages = section "Package sources beyond nixpkgs." {
          flatpak = opt types.bool false "Flatpak, for GUI apps not in nixpkgs." true;
          podman = opt types.bool false "Podman, for development containers." true;
          direnv = opt types.bool false "direnv with nix-direnv, for per-project shells." true;
        };
        nix = section "Binary caches and remote builders (the linux-surface kernel compiles for hours)." {
          substituters = opt (types.listOf types.str) [] "Extra binary caches (`nix.settings.substituters`)." ["https://cache.example.org"];
          trustedPublicKeys = opt (types.listOf types.str) [] "Public keys of those caches (`nix.settings.trusted-public-keys`), `name:base64`." ["cache.example.org-1:AAAA…"];
          buildMachines = opt (types.listOf buildMachine) [] "Remote builders (`nix.buildMachines`)." (literalExpression ''[ { hostName = "builder.example.org"; maxJobs = 8; } ]'');
        };
        users = opt (types.listOf user) [] "People who log in; at least one must be an administrator (`bifrost check` refuses a host without one). `bifrost install` asks for each one's password." (literalExpression ''[ { name = "alice"; admin = true; } ]'');
        output = section "Where build artifacts go." {
          root = opt types.str "/mnt/kinoite/@images/a_nixos_host" "Root of the build output layout (`0_podman`, `1_oci`, `2_raw`, `3_deploy`)." "/srv/bifrost";
        };
      };
    };
  };
}
