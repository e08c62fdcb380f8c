# A host any x86_64 machine can build and boot in QEMU (`bifrost vm`), so
# bifrost can be tried without a Surface: the same LUKS2 + btrfs layout on
# virtio disks, a nixpkgs kernel, the serial console.
{lib, ...}: {
  bifrost.enable = true;
  bifrost.settings = lib.importJSON ./host.json;
  bifrost.boot.refind.enable = true;

  nixpkgs.hostPlatform = "x86_64-linux";
  system.stateVersion = "26.05";
}
