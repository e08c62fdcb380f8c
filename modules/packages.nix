# bifrost package sources: Flatpak, Podman for dev containers, direnv.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  p = cfg.settings.packages;
in {
  config = lib.mkIf cfg.enable {
    services.flatpak.enable = p.flatpak;
    virtualisation.podman.enable = p.podman;
    programs.direnv = {
      enable = p.direnv;
      nix-direnv.enable = p.direnv;
    };
  };
}
