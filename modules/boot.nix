# bifrost.boot.refind: rEFInd as the boot loader, installed by
# `bifrost esp install` through nixpkgs' `boot.loader.external` (the way
# lanzaboote plugs in), so `nixos-rebuild switch`, `nixos-install` and image
# builds all run the same tested code path.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.bifrost.boot.refind;
  settings = config.bifrost.settings;
  efi = config.boot.loader.efi;
  kinoite = settings.dualBoot.kinoite or null;
  espDir = efi.efiSysMountPoint;
  refindEfi = "${cfg.package}/share/refind/refind_x64.efi";
  extraConfigFile = pkgs.writeText "bifrost-refind-extra.conf" cfg.extraConfig;
  installArgs =
    [
      "--settings"
      "${config.bifrost.settingsFile}"
      "--esp"
      espDir
      "--profiles"
      "/nix/var/nix/profiles"
      "--refind-efi"
      refindEfi
    ]
    ++ lib.optionals (cfg.extraConfig != "") ["--extra-config" "${extraConfigFile}"]
    # Secure Boot signing (security.secureBoot: keys read by path at install
    # time, never from the Nix store) and the firmware boot entry (rEFInd
    # first unless boot.removable, labelled boot.nvramLabel) follow the
    # settings file (esp::choices).
    # Only what Nix alone knows goes on the command line: image builds turn
    # canTouchEfiVariables off, having no NVRAM of the machine to write.
    ++ lib.optional (!efi.canTouchEfiVariables) "--no-nvram";

  # Kinoite's /boot, named as the settings name it (UUID=, PARTUUID=, LABEL=
  # or a bare label): the udev link of that device, the same one
  # `bifrost install` mounts (spec/volume.rs).
  kinoiteVolume = toString (kinoite.bootVolume or "");
  kinoiteDevice =
    if lib.hasPrefix "UUID=" kinoiteVolume
    then "/dev/disk/by-uuid/${lib.toLower (lib.removePrefix "UUID=" kinoiteVolume)}"
    else if lib.hasPrefix "PARTUUID=" kinoiteVolume
    then "/dev/disk/by-partuuid/${lib.toLower (lib.removePrefix "PARTUUID=" kinoiteVolume)}"
    else "/dev/disk/by-label/${lib.removePrefix "LABEL=" kinoiteVolume}";

  # Chainload mode needs nothing from Kinoite's /boot: rEFInd starts
  # Fedora's own boot loader from the ESP, which reads the current entries.
  # Direct mode reads Kinoite's /boot where it is mounted, or mounts that
  # device read-only for the length of the install.
  directScript = ''
    kinoite_boot=${lib.escapeShellArg (toString cfg.kinoite.bootMountPoint)}
    if [ -z "$kinoite_boot" ]; then
      kinoite_boot=$(mktemp -d)
      if ! mount -o ro ${lib.escapeShellArg kinoiteDevice} "$kinoite_boot"; then
        echo "bifrost: cannot mount Kinoite's /boot (${kinoiteDevice}); set bifrost.boot.refind.kinoite.bootMountPoint or bifrost.settings.dualBoot.kinoite.bootVolume (UUID= as in Kinoite's /etc/fstab). The ESP was not changed." >&2
        rmdir "$kinoite_boot"
        exit 1
      fi
      trap 'umount "$kinoite_boot"; rmdir "$kinoite_boot"' EXIT
    fi
    set -- "$@" --kinoite-boot "$kinoite_boot"
  '';
  kinoiteScript = lib.optionalString (kinoite != null && (kinoite.mode or "chainload") == "direct") directScript;

  installHook = pkgs.writeShellScript "bifrost-install-bootloader" ''
    # Called by switch-to-configuration with the new system's toplevel as $1;
    # every generation in the system profile gets an entry, so $1 is not needed.
    set -euo pipefail
    export PATH=${lib.makeBinPath [pkgs.coreutils pkgs.util-linux pkgs.efibootmgr]}:$PATH
    set --
    ${kinoiteScript}
    ${lib.getExe config.bifrost.package} esp install ${lib.escapeShellArgs installArgs} "$@"
  '';
  # Each of these said a host setting a second time; the settings are the
  # one place now. A renamed alias cannot point into the settings submodule
  # (lib.doRename needs the target declared at top level), so an old
  # definition fails evaluation with the setting to use instead.
  removed = {
    efiInstallAsRemovable = "bifrost.settings.boot.removable";
    maxGenerations = "bifrost.settings.boot.maxGenerations (0 keeps all)";
    timeout = "bifrost.settings.boot.timeout";
    textOnly = "bifrost.settings.boot.textOnly";
    defaultEntry = "bifrost.settings.boot.defaultEntry";
    nvramLabel = "bifrost.settings.boot.nvramLabel";
    "kinoite.enable" = "bifrost.settings.dualBoot.kinoite (null: no Kinoite side)";
    "kinoite.mode" = "bifrost.settings.dualBoot.kinoite.mode";
    "kinoite.title" = "bifrost.settings.dualBoot.kinoite.title";
    "kinoite.volume" = "bifrost.settings.dualBoot.kinoite.bootVolume";
    "kinoite.entriesDir" = "bifrost.settings.dualBoot.kinoite.entriesDir";
  };
in {
  imports =
    lib.mapAttrsToList (
      old: new:
        lib.mkRemovedOptionModule (["bifrost" "boot" "refind"] ++ lib.splitString "." old) "Set ${new} instead: the host settings say it once."
    )
    removed;

  options.bifrost.boot.refind = {
    enable = lib.mkEnableOption "rEFInd as the boot loader, installed by `bifrost esp install` (NixOS generations and the Kinoite side)";

    package = lib.mkPackageOption pkgs "refind" {};

    extraConfig = lib.mkOption {
      type = lib.types.lines;
      default = "";
      example = ''
        resolution max
        use_nvram false
      '';
      description = ''
        Lines added to the global section of refind.conf. Menu entries are
        bifrost's: a `menuentry` here is refused.
      '';
    };

    kinoite = {
      bootMountPoint = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/mnt/kinoite-boot";
        description = ''
          Where NixOS mounts Kinoite's {file}`/boot`; `null` mounts the device
          `bifrost.settings.dualBoot.kinoite.bootVolume` names read-only for the
          length of each install.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = pkgs.stdenv.hostPlatform.isx86_64;
        message = "bifrost.boot.refind supports x86_64 UEFI machines only (it installs refind_x64.efi).";
      }
      {
        assertion = !((config.boot.loader.refind or {}).enable or false);
        message = "bifrost.boot.refind and nixpkgs' boot.loader.refind both install rEFInd: set `boot.loader.refind.enable = false;`.";
      }
      {
        assertion = !config.boot.loader.systemd-boot.enable;
        message = "bifrost.boot.refind installs rEFInd as the boot loader: set `boot.loader.systemd-boot.enable = false;`.";
      }
      {
        assertion = !config.boot.loader.grub.enable;
        message = "bifrost.boot.refind installs rEFInd as the boot loader: set `boot.loader.grub.enable = false;`.";
      }
    ];

    boot.loader.efi.efiSysMountPoint = lib.mkDefault (toString settings.boot.esp.mountPoint);

    # external.nix turns both off with mkDefault, and the disk-image variants
    # turn systemd-boot on with mkDefault: equal priorities conflict. A
    # priority just above mkDefault wins over both and still yields to a
    # user's explicit setting, which the assertions above then explain.
    boot.loader.systemd-boot.enable = lib.mkOverride 900 false;
    boot.loader.grub.enable = lib.mkOverride 900 false;

    boot.loader.external = {
      enable = true;
      installHook = installHook;
    };
  };
}
