# bifrost.installer.*: what the seed's USB installer (images.iso-installer)
# carries so that `bifrost install` runs from it: the bifrost binary, the
# tools its plan calls, rEFInd, and this flake's source.
#
# nixpkgs builds each image variant from the host's configuration extended
# with `image.modules.<variant>` (nixos/modules/image/images.nix), so these
# settings reach the ISO only, not the installed system.
{flakeSource ? null}: {
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types literalExpression;
  cfg = config.bifrost.installer;
in {
  options.bifrost.installer = {
    enable = mkOption {
      type = types.bool;
      default = config.bifrost.enable;
      defaultText = literalExpression "config.bifrost.enable";
      description = "Put bifrost, its install tools, rEFInd and the flake's source on the installer ISO (`images.iso-installer`, built by `bifrost build iso`).";
      example = false;
    };

    flake = mkOption {
      type = types.nullOr types.path;
      default = flakeSource;
      defaultText = literalExpression "the bifrost flake's own source (self)";
      description = "Flake copied to `/etc/bifrost/flake` on the installer, so `bifrost install --flake /etc/bifrost/flake --host NAME` works offline. `null` leaves it out.";
      example = literalExpression "./.";
    };
  };

  config = lib.mkIf cfg.enable {
    image.modules.iso-installer = {
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
      # The install plan names the rEFInd binary explicitly; nixpkgs does not
      # link refind's share/ into the system profile.
      environment.sessionVariables.BIFROST_REFIND_EFI = "${pkgs.refind}/share/refind/refind_x64.efi";
      environment.etc = lib.mkIf (cfg.flake != null) {
        "bifrost/flake".source = cfg.flake;
      };
    };
  };
}
