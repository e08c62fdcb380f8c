# bifrost package sources: Flatpak, Podman for dev containers, direnv.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.bifrost;
  p = cfg.settings.packages;
in {
  config = lib.mkIf cfg.enable {
    services.flatpak.enable = p.flatpak;
    # nixpkgs' flatpak.nix asserts XDG portals are on, and portal.nix that one
    # implementation is listed. Plasma brings its own; without it, GTK's.
    xdg.portal = lib.mkIf (p.flatpak && !cfg.settings.desktop.plasma6) {
      enable = true;
      extraPortals = [pkgs.xdg-desktop-portal-gtk];
      config.common.default = lib.mkDefault "gtk";
    };
    virtualisation.podman.enable = p.podman;
    programs.direnv = {
      enable = p.direnv;
      nix-direnv.enable = p.direnv;
    };
  };
}
