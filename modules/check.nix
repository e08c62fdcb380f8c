# bifrost's rules for host settings are written once, in bifrost-core's
# spec/validate.rs. The system build runs `bifrost check` on the settings
# file every other part of the system reads (`bifrost.settingsFile`), so a
# setting bifrost would refuse stops `nixos-rebuild` (and `nix flake check`)
# with bifrost's own message: the JSON path and the fix. NixOS assertions
# are left only for what Nix alone knows (which modules are imported, other
# boot loaders).
#
# Options set, as declared in nixpkgs:
# - system.checks: nixos/modules/system/activation/top-level.nix (packages
#   the system's build depends on without putting them in the system).
# - pkgs.runCommandLocal: pkgs/build-support/trivial-builders/default.nix.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.bifrost;
in {
  options.bifrost.settingsCheck = lib.mkOption {
    type = lib.types.package;
    readOnly = true;
    internal = true;
    default = pkgs.runCommandLocal "bifrost-check-settings" {} ''
      if ${lib.getExe cfg.package} check ${cfg.settingsFile}; then
        touch "$out"
      else
        echo "bifrost.settings: fix the settings above (the host's settings file), then build again" >&2
        exit 1
      fi
    '';
    defaultText = lib.literalExpression ''pkgs.runCommandLocal "bifrost-check-settings" {} "bifrost check ''${config.bifrost.settingsFile} && touch $out"'';
    description = "A derivation that builds only when `bifrost check` accepts `bifrost.settingsFile`; one of `system.checks`, so the system does not build with settings bifrost refuses.";
    example = "/nix/store/…-bifrost-check-settings";
  };

  config = lib.mkIf cfg.enable {
    system.checks = [cfg.settingsCheck];
  };
}
