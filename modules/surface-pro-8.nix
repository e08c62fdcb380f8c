# The Surface Pro 8 addition to the bifrost module (`nixosModules.surface-pro-8`):
# nixos-hardware has no Pro 8 module; the Pro 8 (Tiger Lake) uses
# `microsoft-surface-pro-intel` (linux-surface kernel, iptsd for touch and
# pen, thermald with its thermal configuration, surface-control).
{nixos-hardware}: {
  config,
  lib,
  pkgs,
  ...
}: let
  # The Surface kernel version and the kernel parameters nixos-hardware's
  # module must keep (lib/hardware-config.nix, shared with `bifrost gen hardware`).
  layout = import ./lib/hardware-config.nix {
    inherit lib pkgs;
    inherit (config.bifrost) settings;
    facts = lib.importJSON ./generated/facts.json;
  };
in {
  imports = [nixos-hardware.nixosModules.microsoft-surface-pro-intel];

  config = lib.mkIf config.bifrost.enable layout.surface;
}
