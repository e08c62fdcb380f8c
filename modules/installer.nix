# bifrost.installer.*: what the seed's USB installer (images.iso-installer)
# carries so that `bifrost install` runs from it with no network: the
# bifrost binary, the tools its plan calls, rEFInd, the flake it was built
# from with every input that flake locks, and this host's system closure.
#
# nixpkgs builds each image variant from the host's configuration extended
# with `image.modules.<variant>` (nixos/modules/image/images.nix), so these
# settings reach the ISO only, not the installed system; `config` below is
# the host's, so `hostSystem` is the system the ISO installs.
{flakeSource ? null}: {
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types literalExpression;
  cfg = config.bifrost.installer;
  hostSystem = config.system.build.toplevel;

  # A flake's source and, recursively, every input it locks: what
  # `nixos-install --flake` evaluates. Inputs already in the store are used
  # as they are (their narHash matches), so nothing is fetched.
  sources = f:
    [f.outPath]
    ++ lib.concatMap sources (lib.attrValues (f.inputs or {}));
  flakeSources =
    if cfg.flake == null
    then []
    else lib.unique (sources cfg.flake);
  flakePath =
    if cfg.flake == null
    then null
    else cfg.flake.outPath or cfg.flake;
in {
  options.bifrost.installer = {
    enable = mkOption {
      type = types.bool;
      default = config.bifrost.enable;
      defaultText = literalExpression "config.bifrost.enable";
      description = "Put bifrost, its install tools, rEFInd, the flake with its inputs and this host's system on the installer ISO (`images.iso-installer`, built by `bifrost build iso`), so it installs with no network.";
      example = false;
    };

    flake = mkOption {
      type = types.nullOr (types.either types.path types.attrs);
      default = flakeSource;
      defaultText = literalExpression "null (bifrost's own hosts set their flake's `self`)";
      description = ''
        The flake this host comes from: your flake's `self` (its inputs come
        along, so the install needs no network), or a path to its source.
        Linked at `/etc/bifrost/flake` on the installer, where
        `bifrost install` finds it. A flake that imports bifrost sets its own
        `self` here, so the installer installs its host, not bifrost's.
      '';
      example = literalExpression "self";
    };

    host = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "Name of this host in the flake's `nixosConfigurations`: what `bifrost install` on the installer installs unless told otherwise.";
      example = "surface-pro-8";
    };
  };

  config = lib.mkIf cfg.enable {
    image.modules.iso-installer = {
      assertions = [
        {
          assertion = cfg.flake != null;
          message = "bifrost.installer.flake is not set: set it to your flake's `self` (for example `bifrost.installer.flake = self;` in the host's modules), so the installer carries the flake that defines nixosConfigurations.${cfg.host}.";
        }
      ];
      environment.systemPackages = [
        config.bifrost.package
        pkgs.refind
        pkgs.cryptsetup
        pkgs.btrfs-progs
        pkgs.gptfdisk
        pkgs.dosfstools
        # `bifrost install` registers rEFInd in NVRAM through it.
        pkgs.efibootmgr
      ];
      environment.sessionVariables =
        {
          # The install plan names the rEFInd binary explicitly; nixpkgs does
          # not link refind's share/ into the system profile.
          BIFROST_REFIND_EFI = "${pkgs.refind}/share/refind/refind_x64.efi";
          # What `bifrost install` installs by default, and says it installs.
          BIFROST_INSTALL_HOST = cfg.host;
          BIFROST_INSTALL_SYSTEM = "${hostSystem}";
          # The ISO extends the host's configuration: its
          # /etc/bifrost/host.json holds the host's effective settings.
          BIFROST_INSTALL_SETTINGS = "/etc/bifrost/host.json";
        }
        // lib.optionalAttrs (cfg.flake != null) {
          BIFROST_INSTALL_FLAKE = "/etc/bifrost/flake";
        };
      environment.etc = lib.mkIf (cfg.flake != null) {
        "bifrost/flake".source = flakePath;
      };
      # The host's system and the flake's sources in the ISO's store: the
      # install copies them instead of building or downloading.
      isoImage.storeContents = [hostSystem] ++ flakeSources;
      # Wi-Fi on the installer: `nmtui`. installation-device.nix enables
      # wpa_supplicant, which NetworkManager refuses beside it (nixpkgs'
      # graphical installer does the same).
      networking.networkmanager.enable = true;
      networking.wireless.enable = lib.mkImageMediaOverride false;
    };
  };
}
