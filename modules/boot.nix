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
  # Secure Boot: keys are named by path (strings, read by the hook at install
  # time), so they never enter the Nix store.
  sb = settings.security.secureBoot or {};
  sbRoute = sb.route or "shim";
  sbShimFile = sb.shim or null;
  sbOn = (sb.enable or false) && (sb.keysPath or null) != null;
  sbShim = sbOn && sbRoute == "shim";
  sbKey = "${toString sb.keysPath}/${
    if sbRoute == "shim"
    then "mok"
    else "db"
  }";
  signArgs =
    lib.optionals sbOn ["--sign-key" "${sbKey}.key" "--sign-cert" "${sbKey}.crt"]
    ++ lib.optionals sbShim (["--shim"] ++ lib.optional (sbShimFile != null) sbShimFile);

  installArgs =
    [
      "--esp"
      espDir
      "--profiles"
      "/nix/var/nix/profiles"
      "--refind-efi"
      refindEfi
      "--timeout"
      (toString cfg.timeout)
    ]
    ++ lib.optionals (cfg.maxGenerations != null) ["--limit" (toString cfg.maxGenerations)]
    ++ lib.optional cfg.efiInstallAsRemovable "--removable"
    ++ lib.optional cfg.textOnly "--text-only"
    ++ ["--default-entry" cfg.defaultEntry]
    ++ lib.optionals (cfg.extraConfig != "") ["--extra-config" "${extraConfigFile}"]
    ++ signArgs;

  # Kinoite's /boot, named as the settings name it (UUID=, PARTUUID=, LABEL=
  # or a bare label): the udev link of that device, the same one
  # `bifrost install` mounts (spec/volume.rs).
  kinoiteVolume = cfg.kinoite.volume;
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
  chainloadScript = ''
    set -- "$@" --kinoite-mode chainload --kinoite-title ${lib.escapeShellArg cfg.kinoite.title}
  '';
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
    set -- "$@" --kinoite-mode direct \
      --kinoite-entries "$kinoite_boot"${lib.escapeShellArg cfg.kinoite.entriesDir} \
      --kinoite-volume ${lib.escapeShellArg cfg.kinoite.volume}
  '';
  kinoiteScript = lib.optionalString cfg.kinoite.enable (
    if cfg.kinoite.mode == "chainload"
    then chainloadScript
    else directScript
  );

  # rEFInd first in the firmware's boot menu, reusing an entry for the same
  # loader and partition (`bifrost esp install --nvram`; on the shim route
  # the entry starts shim). Image builds turn canTouchEfiVariables off: they
  # have no NVRAM of the machine to write.
  nvramArgs = lib.optionals (efi.canTouchEfiVariables && !cfg.efiInstallAsRemovable) [
    "--nvram"
    "--nvram-label"
    cfg.nvramLabel
  ];

  installHook = pkgs.writeShellScript "bifrost-install-bootloader" ''
    # Called by switch-to-configuration with the new system's toplevel as $1;
    # every generation in the system profile gets an entry, so $1 is not needed.
    set -euo pipefail
    export PATH=${lib.makeBinPath [pkgs.coreutils pkgs.util-linux pkgs.efibootmgr]}:$PATH
    set --
    ${kinoiteScript}
    ${lib.getExe config.bifrost.package} esp install ${lib.escapeShellArgs (installArgs ++ nvramArgs)} "$@"
  '';
in {
  options.bifrost.boot.refind = {
    enable = lib.mkEnableOption "rEFInd as the boot loader, installed by `bifrost esp install` (NixOS generations and the Kinoite side)";

    package = lib.mkPackageOption pkgs "refind" {};

    efiInstallAsRemovable = lib.mkOption {
      type = lib.types.bool;
      default = settings.boot.removable;
      defaultText = lib.literalExpression "config.bifrost.settings.boot.removable";
      example = true;
      description = ''
        Install rEFInd at the firmware fallback path {file}`EFI/BOOT/BOOTX64.EFI`
        (with its refind.conf beside it) instead of {file}`EFI/refind/`. Use it for
        removable media and for firmware that forgets NVRAM entries.
      '';
    };

    maxGenerations = lib.mkOption {
      type = lib.types.nullOr lib.types.ints.positive;
      # In the settings 0 means "keep all" (JSON has no null there).
      default =
        if settings.boot.maxGenerations == 0
        then null
        else settings.boot.maxGenerations;
      defaultText = lib.literalExpression "config.bifrost.settings.boot.maxGenerations (null when it is 0)";
      example = 20;
      description = ''
        How many of the newest NixOS generations get a menu entry; `null` keeps all.
        Kernels and initrds of older generations are deleted from the ESP.
      '';
    };

    timeout = lib.mkOption {
      type = lib.types.int;
      default = settings.boot.timeout;
      defaultText = lib.literalExpression "config.bifrost.settings.boot.timeout";
      example = 3;
      description = "Seconds rEFInd waits before booting the default entry (0: at once; -1: at once unless a key is held).";
    };

    textOnly = lib.mkOption {
      type = lib.types.bool;
      default = settings.boot.textOnly;
      defaultText = lib.literalExpression "config.bifrost.settings.boot.textOnly";
      example = true;
      description = "Text-only rEFInd menu (no graphics, no icons).";
    };

    defaultEntry = lib.mkOption {
      type = lib.types.enum ["nixos" "kinoite" "last-booted"];
      default = settings.boot.defaultEntry or "nixos";
      defaultText = lib.literalExpression "config.bifrost.settings.boot.defaultEntry";
      example = "last-booted";
      description = ''
        Which entry rEFInd boots by default: `nixos` (the newest NixOS generation),
        `kinoite` (Kinoite's newest entry) or `last-booted` (the entry booted last,
        rEFInd's `+`, else the newest NixOS generation, whose entry is then titled
        "NixOS (newest generation)" so that a rebuild keeps it the one booted last).
      '';
    };

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

    nvramLabel = lib.mkOption {
      type = lib.types.str;
      default = "bifrost rEFInd";
      example = "rEFInd";
      description = ''
        Description of the NVRAM boot entry `bifrost esp install --nvram`
        creates when {option}`boot.loader.efi.canTouchEfiVariables` is set and
        rEFInd is not installed as removable. An existing entry for rEFInd's
        loader on the ESP's partition is reused (and put first) whatever its
        label, so changing the label creates no second entry.
      '';
    };

    kinoite = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = kinoite != null;
        defaultText = lib.literalExpression "config.bifrost.settings.dualBoot.kinoite != null";
        example = true;
        description = "Add Fedora Kinoite's boot entries (its BLS entries) to the rEFInd menu.";
      };

      mode = lib.mkOption {
        type = lib.types.enum ["chainload" "direct"];
        default =
          if kinoite != null
          then kinoite.mode or "chainload"
          else "chainload";
        defaultText = lib.literalExpression "config.bifrost.settings.dualBoot.kinoite.mode";
        example = "direct";
        description = ''
          How rEFInd boots Kinoite. `chainload` starts Fedora's own boot loader
          ({file}`EFI/fedora/shimx64.efi`, else {file}`grubx64.efi`) from the ESP; it
          reads Kinoite's current entries itself, so Kinoite's updates never leave
          the menu stale, and it works under Secure Boot. `direct` copies Kinoite's
          BLS entries into rEFInd's menu; Kinoite then runs
          `bifrost esp refresh-kinoite` after each update (docs/kinoite.md).
        '';
      };

      title = lib.mkOption {
        type = lib.types.str;
        default =
          if kinoite != null
          then kinoite.title or "Fedora Kinoite"
          else "Fedora Kinoite";
        defaultText = lib.literalExpression "config.bifrost.settings.dualBoot.kinoite.title";
        example = "Kinoite";
        description = "Menu title of the chainload entry.";
      };

      volume = lib.mkOption {
        type = lib.types.str;
        default =
          if kinoite != null
          then kinoite.bootVolume
          else "";
        defaultText = lib.literalExpression "config.bifrost.settings.dualBoot.kinoite.bootVolume";
        example = "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b";
        description = ''
          Kinoite's {file}`/boot`: `UUID=<file-system UUID>` (as in Fedora's
          {file}`/etc/fstab`), `PARTUUID=<partition GUID>`, `LABEL=<label>` or a bare
          label. The install mounts it read-only by the matching
          {file}`/dev/disk/by-uuid`, {file}`by-partuuid` or {file}`by-label` link;
          rEFInd's `volume` gets the label or partition GUID (for a `UUID=`,
          `bifrost esp install` looks up its partition GUID, since rEFInd cannot
          find a file-system UUID).
        '';
      };

      entriesDir = lib.mkOption {
        type = lib.types.str;
        default =
          if kinoite != null
          then toString kinoite.entriesDir
          else "/loader/entries";
        defaultText = lib.literalExpression "config.bifrost.settings.dualBoot.kinoite.entriesDir";
        example = "/loader/entries";
        description = "Folder of Kinoite's BLS entries, relative to its /boot.";
      };

      bootMountPoint = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "/mnt/kinoite-boot";
        description = ''
          Where NixOS mounts Kinoite's {file}`/boot`; `null` mounts the device
          {option}`volume` names read-only for the length of each install.
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
      {
        assertion = cfg.defaultEntry == "kinoite" -> cfg.kinoite.enable;
        message = "bifrost.boot.refind.defaultEntry = \"kinoite\" needs the Kinoite side: set bifrost.settings.dualBoot.kinoite or bifrost.boot.refind.kinoite.enable.";
      }
      {
        assertion = cfg.kinoite.enable && cfg.kinoite.mode == "direct" -> cfg.kinoite.volume != "";
        message = "bifrost.boot.refind.kinoite.enable needs bifrost.boot.refind.kinoite.volume (or bifrost.settings.dualBoot.kinoite.bootVolume).";
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
