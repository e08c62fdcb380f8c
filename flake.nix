{
  description = "bifrost: build, boot and deploy a declarative NixOS on real hardware (Surface Pro 8, rEFInd, LUKS2 + btrfs)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    nixos-hardware.url = "github:NixOS/nixos-hardware";
    nixos-hardware.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = {
    self,
    nixpkgs,
    nixos-hardware,
  }: let
    inherit (nixpkgs) lib;
    systems = ["x86_64-linux" "aarch64-linux"];
    forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
  in {
    # --- packages (foundation) ---
    packages = forAllSystems (pkgs: rec {
      bifrost = pkgs.callPackage ./package.nix {};
      default = bifrost;
    });

    # --- formatter ---
    formatter = forAllSystems (pkgs: pkgs.alejandra);

    # --- devShells / checks (foundation) ---

    # --- NixOS modules (hardware, storage, boot, security, desktop) and hosts ---
    nixosModules = rec {
      bifrost = import ./modules {inherit nixos-hardware;};
      default = bifrost;
    };

    # --- apps (build driver) ---
  };
}
