# How host settings become the NixOS configuration of a machine's hardware
# and storage: initrd modules, kernel, the LUKS2 device, btrfs subvolumes,
# the ESP and swap. This is the one place that says it: hardware.nix,
# storage.nix and surface-pro-8.nix apply it to `bifrost.settings`, and
# `bifrost gen hardware` copies this file into the module it writes, with
# the host's settings and bifrost's fixed facts (generated/facts.json) as
# values, so both configure the same.
#
# Only attribute names below the top level of each part may depend on the
# settings: the module system reads the top-level names before `config`
# (and so the settings) exists.
{
  lib,
  pkgs,
  # The host settings (`bifrost.settings`, or the parsed host file).
  settings,
  # generated/facts.json: device profiles, ESP mount options, swap layout.
  facts,
}: let
  s = settings;
  st = s.storage;
  profile = facts.profiles.${s.hardware.profile};
  # The Surface settings below are options of this nixos-hardware module.
  onSurface = profile.nixosHardwareModule == "microsoft-surface-pro-intel";
  pool = "/dev/mapper/${st.luks.name}";
  mounted = builtins.filter (v: v.mountPoint != null) st.subvolumes;
  swapMounted = builtins.any (v: v.mountPoint == facts.swap.mountPoint) mounted;

  btrfs = name: options: {
    device = pool;
    fsType = "btrfs";
    options = ["subvol=${name}"] ++ options;
  };

  # nixos-hardware's Surface module sets `boot.kernelPackages` at normal
  # priority: a nixpkgs kernel on a Surface must win over it.
  kernel = attr:
    if onSurface
    then lib.mkForce pkgs.${attr}
    else pkgs.${attr};
in {
  inherit onSurface;

  # The device profile's drivers (on the Surface Pro 8 the keyboard cover
  # sits behind the Surface Aggregator Module on an LPSS UART, which nothing
  # requests before the LUKS prompt: forced) and the kernel.
  hardware = {
    boot.initrd.availableKernelModules = lib.unique (profile.initrdAvailable ++ s.hardware.extraInitrdModules);
    boot.initrd.kernelModules = profile.initrdForced;
    # A definition of normal priority, even an empty list, would replace
    # nixos-hardware's `mkDefault` parameters (see `surface` below).
    boot.kernelParams = lib.mkIf (s.kernel.params != []) s.kernel.params;
    boot.kernelPackages = lib.mkMerge [
      (lib.mkIf (s.kernel.source == "nixos-latest") (kernel "linuxPackages_latest"))
      (lib.mkIf (s.kernel.source == "nixos-default" && onSurface) (kernel "linuxPackages"))
    ];
  };

  # The pool, its mounted subvolumes, the ESP and swap.
  storage = {
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

  # Only beside nixos-hardware's Surface module (the option exists nowhere
  # else). Its microsoft/surface/common sets `mem_sleep_default=deep` with
  # mkDefault, so any other kernelParams definition (the host's, an
  # image's) would drop it; S0ix suspend needs it.
  surface = {
    hardware.microsoft-surface.kernelVersion = s.kernel.surfaceVersion;
    boot.kernelParams = ["mem_sleep_default=deep"];
  };
}
