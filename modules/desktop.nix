# bifrost desktop: KDE Plasma 6 with SDDM.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
in {
  config = lib.mkIf (cfg.enable && cfg.settings.desktop.plasma6) {
    services.desktopManager.plasma6.enable = true;
    services.displayManager.sddm.enable = true;
  };
}
