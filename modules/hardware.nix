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
  surface = s.hardware.profile == "surface-pro-8";
  surfaceImported = lib.hasAttrByPath ["hardware" "microsoft-surface" "kernelVersion"] options;

  # The profile table is bifrost-core/src/hardware/profile.rs, written into
  # generated/facts.json (regenerate: see docs/development.md). Forced
  # modules: on the Surface Pro 8 the keyboard cover sits behind the Surface
  # Aggregator Module on an LPSS UART, which nothing requests before the LUKS
  # prompt.
  profiles = (lib.importJSON ./generated/facts.json).profiles;
  profile = let
    p = profiles.${s.hardware.profile};
  in {
    available = p.initrdAvailable;
    forced = p.initrdForced;
  };

  kernel = attr:
    if surface
    then lib.mkForce pkgs.${attr}
    else pkgs.${attr};
in {
  config = lib.mkIf cfg.enable {
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

    boot.initrd.availableKernelModules = lib.unique (profile.available ++ s.hardware.extraInitrdModules);
    boot.initrd.kernelModules = profile.forced;
    # A definition of normal priority, even an empty list, would replace
    # nixos-hardware's `mkDefault` parameters (surface-pro-8.nix keeps them).
    boot.kernelParams = lib.mkIf (s.kernel.params != []) s.kernel.params;
    boot.kernelPackages = lib.mkMerge [
      (lib.mkIf (s.kernel.source == "nixos-latest") (kernel "linuxPackages_latest"))
      (lib.mkIf (s.kernel.source == "nixos-default" && surface) (kernel "linuxPackages"))
    ];
  };
}
