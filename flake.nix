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
    # `nix run .#build-iso -- --out DIR` builds the flake's default host with
    # this very flake: `path:${self}` is the flake's source as nix copied it
    # into the store, so the app builds what it was run from (`.`, a
    # `github:` ref, …) no matter the working directory. A store path carries
    # no git metadata, so the revision and dirtiness ride along in the
    # environment for the manifest. Extra arguments reach `bifrost build`.
    apps = forAllSystems (pkgs: let
      bifrost = self.packages.${pkgs.stdenv.hostPlatform.system}.bifrost;
      host = "surface-pro-8";
      app = format: {
        type = "app";
        program = "${pkgs.writeShellScript "bifrost-build-${format}" ''
          export BIFROST_FLAKE_REVISION=${lib.escapeShellArg (self.rev or self.dirtyRev or "")}
          export BIFROST_FLAKE_DIRTY=${
            if self ? rev
            then "0"
            else "1"
          }
          exec ${lib.getExe bifrost} build ${format} --flake ${lib.escapeShellArg "path:${self}"} --host ${host} "$@"
        ''}";
      };
    in rec {
      build-raw = app "raw";
      build-iso = app "iso";
      build-qcow = app "qcow";
      build-vm = app "vm";
      default = build-iso;
    });
  };
}
