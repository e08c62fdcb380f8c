# The Surface Pro 8 addition to the bifrost module (`nixosModules.surface-pro-8`):
# nixos-hardware has no Pro 8 module; the Pro 8 (Tiger Lake) uses
# `microsoft-surface-pro-intel` (linux-surface kernel, iptsd for touch and
# pen, thermald with its thermal configuration, surface-control).
{nixos-hardware}: {
  config,
  lib,
  ...
}: {
  imports = [nixos-hardware.nixosModules.microsoft-surface-pro-intel];

  config = lib.mkIf config.bifrost.enable {
    hardware.microsoft-surface.kernelVersion = config.bifrost.settings.kernel.surfaceVersion;
    # nixos-hardware's microsoft/surface/common sets this with mkDefault, so
    # any other kernelParams definition (the host's, an image's) drops it;
    # S0ix suspend needs it.
    boot.kernelParams = ["mem_sleep_default=deep"];
  };
}
