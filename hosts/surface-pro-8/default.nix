# The seed's machine: a Surface Pro 8 dual-booting NixOS and Fedora Kinoite
# from one LUKS2-encrypted btrfs pool. Everything comes from host.json
# through the bifrost module (flake.nix adds nixosModules.surface-pro-8).
# TPM unlock of the pool is off (storage.luks.unlock in host.json); README.md
# beside this file says how to turn it on once Secure Boot is on.
{lib, ...}: {
  bifrost.enable = true;
  bifrost.settings = lib.importJSON ./host.json;
  bifrost.boot.refind.enable = true;
  # Put rEFInd first in the firmware's boot menu on every install (the Surface
  # keeps booting its old loader otherwise); image builds turn this off.
  boot.loader.efi.canTouchEfiVariables = true;

  nixpkgs.hostPlatform = "x86_64-linux";
  system.stateVersion = "26.05";
}
