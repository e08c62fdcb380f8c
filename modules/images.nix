# bifrost on image media: what each image variant of nixpkgs' `images.nix`
# (`config.system.build.images.<variant>`, built by `bifrost build`) changes
# from the host's own configuration.
#
# Every image boots without the host's disk: no LUKS pool to wait for, no
# swap file on it (the image builders replace `fileSystems` themselves with
# `mkImageMediaOverride`; LUKS devices and swap they leave alone).
#
# raw-efi and qemu-efi are built by lib/make-disk-image.nix, which mounts the
# image's ESP at /boot and runs `switch-to-configuration boot` inside its
# build VM: bifrost's install hook runs there, with no EFI variables and no
# Kinoite disk. So the ESP is /boot, rEFInd goes to the firmware's fallback
# path (a disk image has no NVRAM entry wherever it boots), and the Kinoite
# entries are left out (they appear when the real machine installs).
{
  config,
  lib,
  ...
}: let
  media = {
    boot.initrd.luks.devices = lib.mkImageMediaOverride {};
    swapDevices = lib.mkImageMediaOverride [];
  };
  disk = {
    imports = [media];
    boot.loader.efi.efiSysMountPoint = lib.mkImageMediaOverride "/boot";
    boot.loader.efi.canTouchEfiVariables = lib.mkImageMediaOverride false;
    bifrost.settings = {
      boot.removable = lib.mkImageMediaOverride true;
      boot.defaultEntry = lib.mkImageMediaOverride "nixos";
      dualBoot.kinoite = lib.mkImageMediaOverride null;
    };
  };
in {
  config = lib.mkIf config.bifrost.enable {
    image.modules = {
      raw-efi = disk;
      qemu-efi = disk;
      iso = media;
      # installation-cd-base.nix imports profiles/base.nix, which turns on
      # ZFS: that builds the ZFS kernel module for the configured kernel,
      # broken for linux-surface and often for the newest kernel. bifrost
      # installs btrfs; the installer does not need ZFS.
      iso-installer = {
        imports = [media];
        boot.supportedFilesystems.zfs = lib.mkImageMediaOverride false;
      };
    };
  };
}
