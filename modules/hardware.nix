# bifrost hardware: initrd kernel modules and kernel of the device profile.
#
# nixos-hardware's Surface module cannot be imported from here on a
# condition: `imports` are resolved before `config` exists, so they cannot
# depend on `bifrost.settings.hardware.profile` (that is infinite
# recursion). The flake therefore exposes `nixosModules.surface-pro-8`
# (this module plus nixos-hardware's `microsoft-surface-pro-intel`, see
# surface-pro-8.nix), and the assertions below catch a profile that does
# not match what was imported, naming the module to import.
{
  config,
  lib,
  options,
  pkgs,
  ...
}: let
  cfg = config.bifrost;
  s = cfg.settings;
  # How the profile and kernel settings become NixOS options (shared with
  # storage.nix and `bifrost gen hardware`); the profile table itself is
  # bifrost-core/src/hardware/profile.rs, written into generated/facts.json.
  layout = import ./lib/hardware-config.nix {
    inherit lib pkgs;
    settings = s;
    facts = lib.importJSON ./generated/facts.json;
  };
  surface = layout.onSurface;
  surfaceImported = lib.hasAttrByPath ["hardware" "microsoft-surface" "kernelVersion"] options;
in {
  config = lib.mkIf cfg.enable (layout.hardware
    // {
      # "linux-surface" only with the Surface profile is bifrost's rule
      # (check.nix runs `bifrost check`); whether nixos-hardware's module is
      # imported only Nix knows.
      assertions = [
        {
          assertion = !surface || surfaceImported;
          message = "bifrost.settings.hardware.profile is \"surface-pro-8\" but nixos-hardware's Surface module is not imported: use bifrost's nixosModules.surface-pro-8 instead of nixosModules.default.";
        }
        {
          assertion = surface || !surfaceImported;
          message = "nixos-hardware's Surface module is imported but bifrost.settings.hardware.profile is \"${s.hardware.profile}\": set the profile to \"surface-pro-8\", or use nixosModules.default instead of nixosModules.surface-pro-8.";
        }
      ];
    });
}
