# The bifrost NixOS module (`nixosModules.default`).
#
# `nixos-hardware` is this flake's input and `packages` its `packages`
# output, both passed in by flake.nix. The options under `bifrost.settings`
# mirror the host settings document (settings.nix); the other files turn
# them into NixOS configuration, one concern each.
{
  nixos-hardware,
  packages ? {},
  flakeSource ? null,
}: {
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption types literalExpression;
  cfg = config.bifrost;

  # serde reads a missing optional field and `null` alike, but a document
  # without the nulls is what `bifrost detect` and people write.
  clean = v:
    if builtins.isAttrs v
    then lib.mapAttrs (_: clean) (lib.filterAttrs (_: x: x != null) v)
    else if builtins.isList v
    then map clean v
    else v;
in {
  imports = [
    ./settings.nix
    ./check.nix
    ./hardware.nix
    ./storage.nix
    ./tpm.nix
    ./boot.nix
    ./security.nix
    ./desktop.nix
    ./packages.nix
    ./nix.nix
    ./images.nix
    ./users.nix
    (import ./installer.nix {inherit flakeSource;})
  ];

  options.bifrost = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = "Configure this machine from `bifrost.settings`: hardware, LUKS2 + btrfs storage, boot, security, desktop, package sources and Nix settings.";
      example = true;
    };

    package = mkOption {
      type = types.package;
      default = packages.${pkgs.stdenv.hostPlatform.system}.bifrost or (pkgs.callPackage ../package.nix {});
      defaultText = literalExpression "bifrost.packages.\${pkgs.stdenv.hostPlatform.system}.bifrost";
      description = "The bifrost package (the `bifrost` binary) installed on the system and used by the boot-loader hook.";
      example = literalExpression "bifrost.packages.x86_64-linux.bifrost";
    };

    effectiveSettings = mkOption {
      type = types.attrs;
      readOnly = true;
      internal = true;
      default = clean cfg.settings;
      defaultText = literalExpression "config.bifrost.settings without its null values";
      description = "The host settings document as an attribute set; `settingsFile` is its JSON.";
    };

    settingsFile = mkOption {
      type = types.path;
      readOnly = true;
      default = pkgs.writeText "bifrost-host.json" (builtins.toJSON cfg.effectiveSettings);
      defaultText = literalExpression ''pkgs.writeText "bifrost-host.json" (builtins.toJSON config.bifrost.settings)'';
      description = "The effective host settings as JSON (read-only). The `bifrost` binary reads this file; it is also linked at `/etc/bifrost/host.json`.";
      example = "/nix/store/…-bifrost-host.json";
    };
  };

  config = lib.mkIf cfg.enable {
    networking.hostName = cfg.settings.hostName;
    environment.systemPackages = [cfg.package];
    environment.etc."bifrost/host.json".source = cfg.settingsFile;
  };
}
