# bifrost storage: the LUKS2 container and btrfs subvolumes of the host
# settings, the ESP and swap. Sets what `bifrost gen hardware` writes; the
# fixed layout (ESP mount options, the swap subvolume) comes from
# bifrost-core/src/hardware/render.rs through generated/facts.json.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  s = cfg.settings;
  st = s.storage;
  facts = lib.importJSON ./generated/facts.json;
  pool = "/dev/mapper/${st.luks.name}";
  mounted = builtins.filter (v: v.mountPoint != null) st.subvolumes;
  swapMounted = builtins.any (v: v.mountPoint == facts.swap.mountPoint) mounted;

  btrfs = name: options: {
    device = pool;
    fsType = "btrfs";
    options = ["subvol=${name}"] ++ options;
  };
in {
  # Subvolume names and mount points used once each: bifrost's rule, checked
  # by check.nix (`bifrost check`).
  config = lib.mkIf cfg.enable {
    # The shared subvolume's group, with the gid Kinoite gives it too
    # (`bifrost install` makes the subvolume's top folder root:<gid> 2775).
    users.groups = lib.mkIf (builtins.any (v: v.owner == "shared") st.subvolumes) {
      ${st.sharedGroup.name}.gid = st.sharedGroup.gid;
    };

    boot.initrd.luks.devices.${st.luks.name} = {
      inherit (st.luks) device allowDiscards;
    };

    fileSystems =
      builtins.listToAttrs (map (v: lib.nameValuePair v.mountPoint (btrfs v.name v.mountOptions)) mounted)
      // {
        ${s.boot.esp.mountPoint} = {
          inherit (s.boot.esp) device fsType;
          options = facts.esp.mountOptions;
        };
      }
      # A swap file needs a subvolume without compression or snapshots.
      // lib.optionalAttrs (st.swap.kind == "file" && !swapMounted) {
        ${facts.swap.mountPoint} = btrfs facts.swap.subvolume facts.swap.mountOptions;
      };

    swapDevices = lib.optional (st.swap.kind == "file") {
      device = facts.swap.file;
      size = st.swap.sizeMib;
    };

    zramSwap = lib.mkIf (st.swap.kind == "zram") {
      enable = true;
      memoryMax = st.swap.sizeMib * 1024 * 1024;
    };
  };
}
