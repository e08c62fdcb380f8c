# The bifrost NixOS module. `nixos-hardware` is this flake's input, passed in
# by flake.nix so the hardware part can import the right device module.
{nixos-hardware}: {
  imports = [];
}
