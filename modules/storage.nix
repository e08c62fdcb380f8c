# bifrost storage: the LUKS2 container and btrfs subvolumes of the host
# settings, the ESP and swap. The layout itself (what `bifrost gen hardware`
# writes too) is lib/hardware-config.nix; this module adds the shared group.
{
  config,
  lib,
  pkgs,
  ...
}: let
  cfg = config.bifrost;
  s = cfg.settings;
  st = s.storage;
  layout = import ./lib/hardware-config.nix {
    inherit lib pkgs;
    settings = s;
    facts = lib.importJSON ./generated/facts.json;
  };
in {
  # Subvolume names and mount points used once each: bifrost's rule, checked
  # by check.nix (`bifrost check`).
  config = lib.mkIf cfg.enable (layout.storage
    // {
      # The shared subvolume's group, with the gid Kinoite gives it too
      # (`bifrost install` makes the subvolume's top folder root:<gid> 2775).
      users.groups = lib.mkIf (builtins.any (v: v.owner == "shared") st.subvolumes) {
        ${st.sharedGroup.name}.gid = st.sharedGroup.gid;
      };
    });
}
