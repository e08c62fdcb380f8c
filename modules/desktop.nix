# bifrost desktop: KDE Plasma 6 with SDDM and NetworkManager.
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
    # Wi-Fi from the desktop (Plasma adds its applet only with NetworkManager;
    # `nmtui` on a console).
    networking.networkmanager.enable = lib.mkDefault true;
  };
}
