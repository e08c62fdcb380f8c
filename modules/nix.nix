# bifrost Nix settings: binary caches and remote builders. The linux-surface
# kernel compiles from source for hours on the device; a cache or a faster
# builder is the remedy.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  n = cfg.settings.nix;
  machine = m:
    {
      inherit (m) hostName systems maxJobs;
      protocol = "ssh-ng";
    }
    // lib.optionalAttrs (m.sshUser != null) {inherit (m) sshUser;}
    // lib.optionalAttrs (m.sshKey != null) {inherit (m) sshKey;};
in {
  config = lib.mkIf cfg.enable {
    # The installed system is managed from its flake (`nix flake update`,
    # `nixos-rebuild --flake`).
    nix.settings.experimental-features = ["nix-command" "flakes"];
    nix.settings.substituters = n.substituters;
    nix.settings.trusted-public-keys = n.trustedPublicKeys;
    nix.buildMachines = map machine n.buildMachines;
    nix.distributedBuilds = n.buildMachines != [];
  };
}
