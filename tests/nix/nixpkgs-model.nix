# A strict local model of the parts of nixpkgs (and nixos-hardware) that
# bifrost's modules meet, for module tests on machines that cannot fetch
# nixpkgs. No freeform root: an option bifrost sets that is not declared here
# fails with nixpkgs' own "The option `…' does not exist" error.
#
# Each declaration mirrors the nixpkgs file named beside it: the same type and
# default, and the definitions those modules make on options we also set
# (that is where the real bugs were: two `mkDefault`s on one bool, an
# assertion, a broken kernel module, image-media overrides). The files and
# the commits they were read at are listed in docs/options.md.
#
# `nixosSystem` has the shape of nixpkgs' `lib.nixosSystem`, so the flake's
# own `nixosConfigurations` can be evaluated with it (tests/nix/model-eval.nix).
#
# `buildable`: `writeText` and `runCommandLocal` make real derivations, built
# by the host's /bin/sh, so a test can build what the modules build with
# them (the settings file and its check); every other package stays a name.
{
  lib,
  buildable ? false,
}: let
  inherit (lib) mkOption types mkDefault mkIf mkImageMediaOverride mkVMOverride;
  opt = type: default: mkOption {inherit type default;};
  bool = default: opt types.bool default;
  enable = bool false;
  listOfStr = opt (types.listOf types.str) [];

  drv = name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    }
    // extra;

  # A kernel package set. nixpkgs marks ZFS broken for kernels newer than
  # the ZFS release supports (linuxPackages_latest, linux-surface stable):
  # using it then fails evaluation with "is marked as broken".
  kernelSet = name: zfsOk: {
    kernel = drv "linux-${name}" {};
    zfs_2_3 =
      if zfsOk
      then drv "zfs-kernel-${name}" {}
      else throw "Package ‘zfs-kernel-2.3-${name}’ in pkgs/os-specific/linux/zfs is marked as broken, refusing to evaluate.";
  };

  # pkgs/build-support/trivial-builders/default.nix: runCommandLocal runs
  # its command in stdenvNoCC (bash with `set -e`, coreutils on PATH) and
  # writeText writes the text to $out. The stand-in runs the command with the
  # host's sh and coreutils.
  shBuild = name: env: command:
    derivation (env
      // {
        inherit name;
        system = pkgs.stdenv.hostPlatform.system;
        builder = "/bin/sh";
        args = ["-e" "-c" command];
        PATH = "/usr/bin:/bin";
      });
  trivial =
    if buildable
    then {
      writeText = name: text: shBuild name {inherit text;} ''printf '%s' "$text" > "$out"'';
      runCommandLocal = shBuild;
    }
    else {
      writeText = name: text: drv name {inherit text;};
      runCommandLocal = name: env: buildCommand: drv name (env // {inherit buildCommand;});
    };

  pkgs = let
    names = ["refind" "coreutils" "util-linux" "efibootmgr" "gnugrep" "cryptsetup" "btrfs-progs" "gptfdisk" "dosfstools" "flatpak" "networkmanager" "surface-control" "xdg-desktop-portal-gtk"];
  in
    lib.genAttrs names (n: drv n {})
    // {
      linuxPackages = kernelSet "default" true;
      linuxPackages_latest = kernelSet "latest" false;
      inherit (trivial) writeText runCommandLocal;
      writeShellScript = name: text: drv name {inherit text;};
      writeShellApplication = a: drv a.name {inherit (a) text;};
      stdenv.hostPlatform = {
        system = "x86_64-linux";
        isx86_64 = true;
      };
      callPackage = _: _: drv "bifrost" {meta.mainProgram = "bifrost";};
    };

  # --- declarations -------------------------------------------------------
  options = {
    options = {
      # nixos/modules/misc/assertions.nix
      assertions = opt (types.listOf types.unspecified) [];
      warnings = opt (types.listOf types.str) [];
      # nixos/modules/misc/nixpkgs.nix
      nixpkgs.hostPlatform = opt types.raw pkgs.stdenv.hostPlatform;
      # nixos/modules/misc/version.nix
      system.stateVersion = opt types.str "26.05";
      system.nixos.tags = listOfStr;
      system.nixos.label = opt types.str "26.05";
      # nixos/modules/system/activation/top-level.nix: a freeform submodule
      # (upstream too), with the options below declared in it.
      system.build = mkOption {
        type = types.submoduleWith {
          modules = [
            {
              freeformType = types.lazyAttrsOf (types.uniq types.unspecified);
              # nixos/modules/system/activation/top-level.nix
              options.installBootLoader = mkOption {
                type = types.unique {message = "Only one boot loader can be enabled.";} (types.either types.str types.package);
              };
              # nixos/modules/image/images.nix
              options.images = mkOption {
                type = types.lazyAttrsOf types.raw;
                readOnly = true;
              };
            }
          ];
        };
        default = {};
      };
      # nixos/modules/config/system-path.nix (system.extraDependencies: top-level.nix)
      system.extraDependencies = opt (types.listOf types.pathInStore) [];
      # nixos/modules/system/activation/top-level.nix
      system.checks = opt (types.listOf types.package) [];
      environment.systemPackages = opt (types.listOf types.package) [];
      # nixos/modules/system/etc/etc.nix
      environment.etc = opt (types.attrsOf (types.submodule ({name, ...}: {
        options.source = mkOption {type = types.path;};
        options.text = opt (types.nullOr types.lines) null;
        options.target = opt types.str name;
        options.mode = opt types.str "symlink";
      }))) {};
      # nixos/modules/config/shells-environment.nix
      environment.sessionVariables = opt (types.attrsOf (types.either types.str (types.listOf types.str))) {};

      # nixos/modules/tasks/network-interfaces.nix
      networking.hostName = opt (types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$") "nixos";
      networking.hostId = opt (types.nullOr types.str) null;
      # nixos/modules/services/networking/firewall.nix
      networking.firewall.enable = bool true;
      networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [];
      networking.firewall.allowedUDPPorts = opt (types.listOf types.port) [];
      # nixos/modules/services/networking/nftables.nix
      networking.nftables.enable = enable;
      # nixos/modules/services/networking/networkmanager.nix
      networking.networkmanager.enable = enable;
      # nixos/modules/tasks/network-interfaces.nix (wpa_supplicant is
      # networking.wireless; networkmanager.nix asserts they are not both on)
      networking.wireless.enable = enable;

      # nixos/modules/system/boot/kernel.nix
      boot.kernelPackages = opt types.raw pkgs.linuxPackages;
      boot.kernelParams = opt (types.listOf (types.strMatching ''([^"[:space:]]|"[^"]*")+'')) [];
      boot.extraModulePackages = opt (types.listOf types.package) [];
      boot.initrd.availableKernelModules = listOfStr;
      boot.initrd.kernelModules = listOfStr;
      # nixos/modules/tasks/filesystems.nix
      boot.supportedFilesystems = opt (types.coercedTo (types.listOf types.str) (fs: lib.genAttrs fs (_: true)) (types.attrsOf types.bool)) {};
      boot.initrd.supportedFilesystems = opt (types.coercedTo (types.listOf types.str) (fs: lib.genAttrs fs (_: true)) (types.attrsOf types.bool)) {};
      boot.growPartition = enable;
      # nixos/modules/system/boot/luksroot.nix
      boot.initrd.luks.devices = opt (types.attrsOf (types.submodule {
        options.device = mkOption {type = types.str;};
        options.allowDiscards = bool false;
        options.keyFile = opt (types.nullOr types.str) null;
        options.fallbackToPassword = bool false;
        options.crypttabExtraOpts = opt (types.listOf types.singleLineStr) [];
      })) {};
      # nixos/modules/system/boot/systemd/initrd.nix
      boot.initrd.systemd.enable = enable;
      # nixos/modules/system/boot/systemd/tpm2.nix (default: systemd built
      # with tpm2-tss and the boot loader, as nixpkgs' default systemd is)
      boot.initrd.systemd.tpm2.enable = bool true;
      # nixos/modules/system/boot/loader/loader.nix
      boot.loader.timeout = opt (types.nullOr types.int) 5;
      boot.loader.supportsInitrdSecrets = bool false;
      # nixos/modules/system/boot/loader/efi.nix
      boot.loader.efi.efiSysMountPoint = opt types.str "/boot";
      boot.loader.efi.canTouchEfiVariables = enable;
      # nixos/modules/system/boot/loader/grub/grub.nix (enabled by default upstream)
      boot.loader.grub.enable = bool true;
      boot.loader.grub.devices = listOfStr;
      # nixos/modules/system/boot/loader/grub/memtest.nix
      boot.loader.grub.memtest86.enable = enable;
      # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix
      boot.loader.systemd-boot.enable = enable;
      # nixos/modules/system/boot/loader/refind/refind.nix
      boot.loader.refind.enable = enable;
      # nixos/modules/system/boot/loader/external/external.nix
      boot.loader.external.enable = enable;
      boot.loader.external.installHook = mkOption {type = types.path;};
      # nixos/modules/tasks/filesystems/zfs.nix
      boot.zfs.package = opt types.package (drv "zfs-2.3" {});

      # nixos/modules/tasks/filesystems.nix
      fileSystems = opt (types.attrsOf (types.submodule ({name, ...}: {
        options.mountPoint = opt types.str name;
        options.device = opt (types.nullOr types.str) null;
        options.label = opt (types.nullOr types.str) null;
        options.fsType = opt types.str "auto";
        options.options = opt (types.nonEmptyListOf types.str) ["defaults"];
        options.autoResize = bool false;
        options.neededForBoot = bool false;
        options.noCheck = bool false;
        options.depends = listOfStr;
      }))) {};
      # nixos/modules/config/swap.nix
      swapDevices = opt (types.listOf (types.submodule {
        options.device = mkOption {type = types.str;};
        options.size = opt (types.nullOr types.ints.unsigned) null;
      })) [];
      # nixos/modules/config/zram.nix
      zramSwap.enable = enable;
      zramSwap.memoryMax = opt (types.nullOr types.int) null;

      # nixos/modules/security/auditd.nix, security/audit.nix
      security.auditd.enable = enable;
      security.audit.enable = opt (types.enum [false true "lock"]) false;
      # nixos/modules/security/sudo.nix
      security.sudo.enable = bool true;
      security.sudo.wheelNeedsPassword = bool true;
      # nixos/modules/security/polkit.nix
      security.polkit.enable = enable;

      # nixos/modules/services/desktop-managers/plasma6.nix
      services.desktopManager.plasma6.enable = enable;
      # nixos/modules/services/display-managers/sddm.nix
      services.displayManager.sddm.enable = enable;
      # nixos/modules/services/desktops/flatpak.nix
      services.flatpak.enable = enable;
      # nixos/modules/config/xdg/portal.nix
      xdg.portal.enable = enable;
      xdg.portal.extraPortals = opt (types.listOf types.package) [];
      xdg.portal.config = opt (types.attrsOf (types.attrsOf (types.either types.str (types.listOf types.str)))) {};
      # nixos/modules/services/hardware/iptsd.nix, hardware/tlp.nix
      services.iptsd.enable = enable;
      services.tlp.enable = enable;
      # nixos/modules/hardware/all-firmware.nix, hardware/sensor/iio.nix
      hardware.enableRedistributableFirmware = enable;
      hardware.sensor.iio.enable = enable;
      # nixos/modules/virtualisation/podman/default.nix
      virtualisation.podman.enable = enable;
      # nixos/modules/programs/direnv.nix
      programs.direnv.enable = enable;
      programs.direnv.nix-direnv.enable = bool true;

      # nixos/modules/services/networking/ssh/sshd.nix
      services.openssh.enable = enable;
      # nixos/modules/config/users-groups.nix
      users.mutableUsers = bool true;
      users.users = opt (types.attrsOf (types.submodule ({name, ...}: {
        options.name = opt types.str name;
        options.uid = opt (types.nullOr types.int) null;
        options.group = opt types.str "";
        options.description = opt types.str "";
        options.isNormalUser = bool false;
        options.isSystemUser = bool false;
        options.extraGroups = listOfStr;
        options.home = opt types.path "/var/empty";
        options.createHome = bool false;
        options.shell = opt (types.nullOr (types.either types.shellPackage types.path)) null;
        options.hashedPassword = opt (types.nullOr types.str) null;
        options.hashedPasswordFile = opt (types.nullOr types.str) null;
        options.initialPassword = opt (types.nullOr types.str) null;
        options.initialHashedPassword = opt (types.nullOr types.str) null;
        options.openssh.authorizedKeys.keys = opt (types.listOf types.singleLineStr) [];
      }))) {};
      users.groups = opt (types.attrsOf (types.submodule ({name, ...}: {
        options.name = opt types.str name;
        options.gid = opt (types.nullOr types.int) null;
        options.members = listOfStr;
      }))) {};

      # nixos/modules/services/system/nix-daemon.nix, config/nix.nix: the
      # settings are a freeform submodule upstream too.
      nix.settings = opt (types.submodule {
        freeformType = types.attrsOf (types.oneOf [types.bool types.int types.str (types.listOf types.str)]);
        options.substituters = listOfStr;
        options.trusted-public-keys = listOfStr;
        options.experimental-features = listOfStr;
        options.trusted-users = listOfStr;
      }) {};
      nix.buildMachines = opt (types.listOf (types.submodule {
        options.hostName = mkOption {type = types.str;};
        options.systems = listOfStr;
        options.sshUser = opt (types.nullOr types.str) null;
        options.sshKey = opt (types.nullOr types.str) null;
        options.maxJobs = opt types.int 1;
        options.protocol = opt (types.enum [null "ssh" "ssh-ng"]) "ssh";
      })) [];
      nix.distributedBuilds = enable;
      # nixos/modules/config/nix-flakes.nix
      nix.registry = opt (types.attrsOf (types.submodule {
        options.flake = opt (types.nullOr types.raw) null;
        options.to = opt (types.attrsOf types.raw) {};
      })) {};
      nix.nixPath = listOfStr;

      # nixos/modules/image/images.nix
      image.modules = mkOption {type = types.attrsOf types.deferredModule;};
      # nixos/modules/virtualisation/build-vm.nix
      virtualisation.vmVariant = mkOption {
        type = types.raw;
        readOnly = true;
      };
    };
  };

  # --- definitions other nixpkgs modules make ------------------------------
  definitions = {config, ...}: {
    config = lib.mkMerge [
      # nixos/modules/system/boot/loader/external/external.nix
      (mkIf config.boot.loader.external.enable {
        boot.loader.grub.enable = mkDefault false;
        boot.loader.systemd-boot.enable = mkDefault false;
        boot.loader.supportsInitrdSecrets = mkDefault false;
        system.build.installBootLoader = config.boot.loader.external.installHook;
      })
      # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix and
      # grub.nix each define installBootLoader: two loaders conflict
      # ("Only one boot loader can be enabled").
      (mkIf config.boot.loader.systemd-boot.enable {
        system.build.installBootLoader = "systemd-boot-builder";
      })
      (mkIf config.boot.loader.grub.enable {
        system.build.installBootLoader = "install-grub.sh";
      })
      # nixos/modules/config/users-groups.nix: the lockout guard of immutable
      # users, and normal users' uids (the assertions that meet ours).
      {
        assertions =
          [
            {
              assertion =
                !config.users.mutableUsers
                -> lib.any (u:
                  (u.name == "root" || u.group == "wheel" || lib.elem "wheel" u.extraGroups)
                  && (u.hashedPassword != null || u.hashedPasswordFile != null || u.openssh.authorizedKeys.keys != []))
                (lib.attrValues config.users.users);
              message = "Neither the root account nor any wheel user has a password or SSH authorized key.";
            }
          ]
          ++ lib.mapAttrsToList (_: u: {
            assertion = u.isNormalUser && u.uid != null -> u.uid >= 1000;
            message = "A user cannot have a users.users.${u.name}.uid set below 1000 and set users.users.${u.name}.isNormalUser.";
          })
          config.users.users;
      }
      # nixos/modules/system/boot/luksroot.nix: systemd stage 1 asks for the
      # passphrase itself when a key source fails.
      {
        assertions = [
          {
            assertion = config.boot.initrd.systemd.enable -> lib.all (dev: !dev.fallbackToPassword) (builtins.attrValues config.boot.initrd.luks.devices);
            message = "boot.initrd.luks.devices.<name>.fallbackToPassword is implied by systemd stage 1.";
          }
        ];
      }
      # nixos/modules/services/desktops/flatpak.nix
      (mkIf config.services.flatpak.enable {
        assertions = [
          {
            assertion = config.xdg.portal.enable == true;
            message = "To use Flatpak you must enable XDG Desktop Portals with xdg.portal.enable.";
          }
        ];
        environment.systemPackages = [pkgs.flatpak];
        security.polkit.enable = true;
        users.users.flatpak = {
          description = "Flatpak system helper";
          group = "flatpak";
          isSystemUser = true;
        };
        users.groups.flatpak = {};
      })
      # nixos/modules/config/xdg/portal.nix
      (mkIf config.xdg.portal.enable {
        assertions = [
          {
            assertion = config.xdg.portal.extraPortals != [];
            message = "Setting xdg.portal.enable to true requires a portal implementation in xdg.portal.extraPortals such as xdg-desktop-portal-gtk or xdg-desktop-portal-kde.";
          }
        ];
      })
      # nixos/modules/services/desktop-managers/plasma6.nix (what it sets
      # that we also set or read; plasma-nm only with NetworkManager)
      (mkIf config.services.desktopManager.plasma6.enable {
        xdg.portal.enable = true;
        xdg.portal.extraPortals = [(drv "xdg-desktop-portal-kde" {}) pkgs.xdg-desktop-portal-gtk];
        security.polkit.enable = true;
        environment.systemPackages = lib.optional config.networking.networkmanager.enable (drv "plasma-nm" {});
      })
      # nixos/modules/services/networking/networkmanager.nix
      (mkIf config.networking.networkmanager.enable {
        assertions = [
          {
            assertion = !config.networking.wireless.enable;
            message = "You can not use networking.networkmanager with networking.wireless.";
          }
        ];
        environment.systemPackages = [pkgs.networkmanager];
      })
      # nixos/modules/tasks/filesystems/zfs.nix: ZFS support builds the
      # kernel module for the configured kernel.
      (mkIf (config.boot.supportedFilesystems.zfs or false) {
        boot.extraModulePackages = [config.boot.kernelPackages.zfs_2_3];
        assertions = [
          {
            assertion = config.networking.hostId != null;
            message = "ZFS requires networking.hostId to be set";
          }
        ];
      })
      # nixos/modules/virtualisation/build-vm.nix
      {system.build.vm = mkDefault config.virtualisation.vmVariant.system.build.vm;}
    ];
  };

  # nixos/modules/image/file-options.nix
  fileOptions = {config, ...}: {
    options.image = {
      baseName = opt types.str "nixos-image-${config.system.nixos.label}-x86_64-linux";
      extension = mkOption {type = types.str;};
      fileName = opt types.str "${config.image.baseName}.${config.image.extension}";
      filePath = opt types.str config.image.fileName;
    };
  };

  # nixos/modules/virtualisation/disk-image.nix; lib/make-disk-image.nix
  # mounts the image's ESP at /boot (of the target root) and, with
  # installBootLoader = true, runs `switch-to-configuration boot` inside the
  # build VM: the boot-loader hook runs there with no EFI variables
  # (touchEFIVars = false) and no disk other than the image.
  diskImage = {config, ...}: let
    cfg = config.image;
  in {
    imports = [fileOptions];
    options.image.format = opt (types.enum ["raw" "qcow2"]) "qcow2";
    options.image.efiSupport = bool true;
    config = {
      boot.loader.grub = mkIf (!cfg.efiSupport) {
        enable = lib.mkOptionDefault true;
        devices = mkDefault ["/dev/vda"];
      };
      boot.loader.systemd-boot.enable = mkDefault cfg.efiSupport;
      boot.growPartition = mkDefault true;
      fileSystems = mkImageMediaOverride {
        "/" = {
          device = "/dev/disk/by-label/nixos";
          autoResize = true;
          fsType = "ext4";
        };
        "/boot" = mkIf cfg.efiSupport {
          device = "/dev/disk/by-label/ESP";
          fsType = "vfat";
        };
      };
      system.nixos.tags = [cfg.format] ++ lib.optionals cfg.efiSupport ["efi"];
      image.extension = cfg.format;
      system.build.image = drv "nixos-image-${cfg.format}" {
        builder = "make-disk-image";
        # What the build VM runs, and where: the ESP at <root>/boot.
        installBootLoader = config.system.build.installBootLoader;
        espMountPoint = "/boot";
        touchEFIVars = false;
        inherit (config) fileSystems swapDevices;
        luks = config.boot.initrd.luks.devices;
        kernelModules = config.boot.extraModulePackages;
        toplevel = config.system.build.toplevel;
      };
    };
  };

  # nixos/modules/installer/cd-dvd/iso-image.nix
  isoImage = {config, ...}: {
    imports = [fileOptions];
    options.isoImage = {
      isoName = opt types.str "${config.isoImage.isoBaseName}.iso";
      isoBaseName = opt types.str "nixos";
      volumeID = opt types.str "nixos-26.05-x86_64";
      edition = opt types.str "";
      makeEfiBootable = bool false;
      makeUsbBootable = bool false;
      makeBiosBootable = bool true;
      appendToMenuLabel = opt types.str " Installer";
      # untyped upstream: definitions are concatenated
      storeContents = opt types.unspecified [];
      contents = opt (types.listOf types.raw) [];
      includeSystemBuildDependencies = bool false;
    };
    config = {
      boot.loader.grub.enable = false;
      boot.loader.timeout = 10;
      boot.initrd.availableKernelModules = ["squashfs" "iso9660" "uas" "overlay"];
      boot.initrd.kernelModules = ["loop" "overlay"];
      boot.initrd.supportedFilesystems = ["vfat"];
      fileSystems = mkImageMediaOverride {
        "/" = {
          fsType = "tmpfs";
          options = ["mode=0755"];
        };
        "/iso" = {
          device = "/dev/root";
          neededForBoot = true;
          noCheck = true;
        };
        "/nix/.ro-store" = {
          fsType = "squashfs";
          device = "/iso/nix-store.squashfs";
          options = ["loop"];
          neededForBoot = true;
        };
      };
      swapDevices = mkImageMediaOverride [];
      isoImage.storeContents = [config.system.build.toplevel];
      image.extension = "iso";
      image.filePath = "iso/${config.image.fileName}";
      system.build.image = drv "nixos-iso" {
        builder = "make-iso9660-image";
        inherit (config.isoImage) storeContents volumeID;
        inherit (config) fileSystems swapDevices;
        luks = config.boot.initrd.luks.devices;
        kernelModules = config.boot.extraModulePackages;
        etc = lib.mapAttrs (_: e: e.source) config.environment.etc;
        packages = map (p: p.name) config.environment.systemPackages;
        networkmanager = config.networking.networkmanager.enable;
        env = config.environment.sessionVariables;
        toplevel = config.system.build.toplevel;
      };
    };
  };

  # nixos/modules/installer/cd-dvd/installation-cd-base.nix with
  # profiles/base.nix (ZFS where the platform has it: true on x86_64) and
  # profiles/installation-device.nix.
  installationCd = {config, ...}: {
    imports = [isoImage];
    isoImage.isoName = "${config.isoImage.isoBaseName}-${config.system.nixos.label}-x86_64-linux.iso";
    isoImage.volumeID = "NIXOS_ISO";
    isoImage.makeEfiBootable = true;
    isoImage.makeUsbBootable = true;
    boot.loader.grub.memtest86.enable = true;
    system.stateVersion = mkDefault "18.03";
    # profiles/base.nix
    boot.supportedFilesystems = ["btrfs" "cifs" "f2fs" "ntfs" "vfat" "xfs" "zfs"];
    networking.hostId = mkDefault "8425e349";
    environment.systemPackages = [pkgs.cryptsetup pkgs.gptfdisk pkgs.efibootmgr pkgs.dosfstools];
    # profiles/installation-device.nix
    users.users.nixos = {
      isNormalUser = true;
      extraGroups = ["wheel" "networkmanager" "video"];
      initialHashedPassword = "";
    };
    users.users.root.initialHashedPassword = "";
    security.polkit.enable = true;
    security.sudo.enable = mkDefault true;
    security.sudo.wheelNeedsPassword = mkImageMediaOverride false;
    # wpa_supplicant, not started; networkmanager.nix refuses both (the
    # graphical installer sets it to mkImageMediaOverride false).
    networking.wireless.enable = mkDefault true;
    nix.settings.trusted-users = ["nixos"];
  };

  # nixos/modules/virtualisation/qemu-vm.nix (what build-vm.nix extends the
  # configuration with): the VM's own disks, no swap, no LUKS.
  qemuVm = {config, ...}: {
    options.virtualisation.diskSize = opt types.ints.positive 1024;
    config = {
      fileSystems = mkVMOverride {
        "/" = {
          device = "/dev/disk/by-label/nixos";
          fsType = "ext4";
        };
      };
      swapDevices = mkVMOverride [];
      boot.initrd.luks.devices = mkVMOverride {};
      system.build.vm = drv "nixos-vm" {
        inherit (config) fileSystems swapDevices;
        luks = config.boot.initrd.luks.devices;
        kernelModules = config.boot.extraModulePackages;
        toplevel = config.system.build.toplevel;
      };
    };
  };

  images = {
    config,
    extendModules,
    ...
  }: let
    imageModules = {
      qemu-efi = diskImage;
      raw-efi = {
        imports = [diskImage];
        image.format = "raw";
      };
      iso = isoImage;
      iso-installer = installationCd;
    };
  in {
    config.image.modules = imageModules;
    config.system.build.images = lib.mapAttrs (name: module: let
      c = (extendModules {modules = [module];}).config;
      failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
    in
      # nixpkgs' toplevel refuses to build with a failed assertion.
      if failed != []
      then throw "images.${name}: failed assertions:\n- ${lib.concatStringsSep "\n- " failed}"
      else c.system.build.image // {passthru = {inherit (c.image) filePath;};})
    config.image.modules;
    config.virtualisation.vmVariant = let
      c = (extendModules {modules = [qemuVm];}).config;
      failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
    in
      if failed != []
      then throw "vm: failed assertions:\n- ${lib.concatStringsSep "\n- " failed}"
      else c;
  };

  # The toplevel: forces what a real system build forces (the boot loader
  # hook, kernel modules, /etc) so the model evaluates them.
  # nixos/modules/system/activation/top-level.nix refuses failed assertions.
  toplevel = {config, ...}: let
    failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  in {
    system.build.toplevel =
      if failed != []
      then throw "Failed assertions:\n- ${lib.concatStringsSep "\n- " failed}"
      else
        drv "nixos-system-${config.networking.hostName}" {
          installBootLoader = config.system.build.installBootLoader;
          # top-level.nix: the build depends on every check, which must build.
          passedChecks = lib.concatStringsSep " " config.system.checks;
          kernelModules = config.boot.extraModulePackages;
          # The system's /etc, which the toplevel links in (etc/etc.nix).
          etc = config.environment.etc;
        };
  };

  # nixos-hardware microsoft/surface/common/default.nix (linux-surface
  # kernel, mem_sleep_default=deep as a default, firmware) and
  # microsoft/surface/surface-pro-intel/default.nix (iptsd, surface-control).
  surfaceCommon = {config, ...}: {
    options.hardware.microsoft-surface.kernelVersion = opt (types.enum ["longterm" "stable"]) "longterm";
    config = {
      boot.kernelPackages = kernelSet "surface-${config.hardware.microsoft-surface.kernelVersion}" false;
      boot.kernelParams = mkDefault ["mem_sleep_default=deep"];
      services.tlp.enable = mkDefault false;
      hardware.enableRedistributableFirmware = mkDefault true;
      hardware.sensor.iio.enable = mkDefault true;
    };
  };
  surfaceProIntel = {
    imports = [surfaceCommon];
    services.iptsd.enable = mkDefault true;
    environment.systemPackages = [pkgs.surface-control];
  };

  baseModules = [options definitions images toplevel {_module.args.pkgs = pkgs;}];
in {
  inherit pkgs baseModules drv;
  nixos-hardware.nixosModules = {
    microsoft-surface-common = surfaceCommon;
    microsoft-surface-pro-intel = surfaceProIntel;
  };
  # lib.nixosSystem's shape (nixos/lib/eval-config.nix): modules and
  # specialArgs; `extendModules` comes from evalModules.
  nixosSystem = {
    modules,
    specialArgs ? {},
    ...
  }:
    lib.evalModules {
      inherit specialArgs;
      modules = baseModules ++ modules;
    };
}
