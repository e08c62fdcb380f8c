# bifrost storage: the LUKS2 container and btrfs subvolumes of the host
# settings, the ESP and swap. The layout itself (what `bifrost gen hardware`
# writes too) is lib/hardware-config.nix; this module adds what only the
# module knows: assertions over the settings and the shared group.
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
  mounted = builtins.filter (v: v.mountPoint != null) st.subvolumes;

  repeated = xs: lib.unique (builtins.filter (x: lib.count (y: y == x) xs > 1) xs);
  twiceMounted = repeated (map (v: v.mountPoint) mounted ++ [s.boot.esp.mountPoint]);
  twiceNamed = repeated (map (v: v.name) st.subvolumes);
in {
  config = lib.mkIf cfg.enable (layout.storage
    // {
      assertions = [
        {
          assertion = twiceMounted == [];
          message = "bifrost.settings: ${lib.concatStringsSep ", " twiceMounted} is the mount point of more than one subvolume (or of a subvolume and the ESP); give each subvolume its own mountPoint, or null to leave it unmounted.";
        }
        {
          assertion = twiceNamed == [];
          message = "bifrost.settings.storage.subvolumes lists ${lib.concatStringsSep ", " twiceNamed} more than once; keep one entry per subvolume.";
        }
      ];

      # The shared subvolume's group, with the gid Kinoite gives it too
      # (`bifrost install` makes the subvolume's top folder root:<gid> 2775).
      users.groups = lib.mkIf (builtins.any (v: v.owner == "shared") st.subvolumes) {
        ${st.sharedGroup.name}.gid = st.sharedGroup.gid;
      };
    });
}
