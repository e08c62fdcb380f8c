# Evaluates flake.nix outputs with the real nixpkgs lib and stand-in packages
# (nixpkgs itself is not reachable here): catches misspelt outputs, wrong
# function shapes and the dev-shell variables. Used by tests/tests/flake_eval.rs.
{
  flakeDir,
  nixpkgsLib,
}: let
  lib = import nixpkgsLib;
  flake = import (flakeDir + "/flake.nix");
  drv = name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    }
    // attrs;
  mkPkgs = system: let
    names = ["cargo" "rustc" "clippy" "rustfmt" "rust-analyzer" "nix" "alejandra" "qemu" "mtools" "dosfstools" "gptfdisk" "e2fsprogs" "util-linux" "cpio" "bmaptool" "jq" "refind" "cryptsetup" "btrfs-progs" "kmod" "gcc"];
    pkgs =
      lib.genAttrs names (n: drv n {})
      // {
        inherit system;
        stdenv.hostPlatform = {
          isx86_64 = system == "x86_64-linux";
          inherit system;
          linux-kernel.target = "bzImage";
        };
        stdenv.buildPlatform.canExecute = _: true;
        installShellFiles = drv "installShellFiles" {};
        pkgsCross.gnu64 = mkPkgs "x86_64-linux";
        # nixpkgs' pkgsStatic: the same package set for a static musl host
        # (pkgs/top-level/stage.nix); its rustPlatform builds musl binaries.
        pkgsStatic = let
          static = mkPkgs system;
          stdenv = static.stdenv // {hostPlatform = static.stdenv.hostPlatform // {isStatic = true;};};
          rustPlatform = static.rustPlatform // {buildRustPackage = a: drv "${a.pname}-musl-static" a;};
        in
          static
          // {
            busybox = drv "busybox-static-${system}" {};
            inherit stdenv rustPlatform;
            callPackage = f: args:
              import f ({
                  inherit lib stdenv rustPlatform;
                  inherit (static) installShellFiles;
                }
                // args);
          };
        OVMF = drv "OVMF" {
          firmware = "/nix/store/x-OVMF-fd-${system}/FV/OVMF_CODE.fd";
          variables = "/nix/store/x-OVMF-fd/FV/OVMF_VARS.fd";
        };
        linuxPackages.kernel = drv "linux" {};
        rustPlatform = {
          rustLibSrc = drv "rust-src" {};
          buildRustPackage = a: let
            self = drv a.pname (a // {nativeBuildInputs = [];} // {overrideAttrs = f: drv "o" (a // f self);});
          in
            self;
        };
        callPackage = f: args:
          import f ({
              inherit lib;
              inherit (pkgs) rustPlatform stdenv installShellFiles;
            }
            // args);
        mkShell = a: drv "shell" a;
        writeShellApplication = a: drv a.name {inherit (a) text runtimeInputs;};
        runCommand = n: a: script: drv n {inherit script;};
        writeText = n: text: drv n {inherit text;};
      };
  in
    pkgs;
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs ["x86_64-linux" "aarch64-linux"] mkPkgs;
  };
  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs;
    nixos-hardware = {};
  };
in {
  systems = builtins.attrNames outputs.packages;
  checks = lib.mapAttrs (_: c: lib.mapAttrs (_: d: d.name) c) outputs.checks;
  clippyBuild = outputs.checks.x86_64-linux.clippy.buildPhase;
  hostsCheck = outputs.checks.x86_64-linux.hosts.script;
  shell = lib.mapAttrs (_: s: lib.filterAttrs (n: _: lib.hasPrefix "BIFROST_" n) s.default) outputs.devShells;
  pkgVersion = outputs.packages.x86_64-linux.bifrost.version;
  staticPackages = lib.mapAttrs (_: p: p.bifrost-static.name) outputs.packages;
  testFlags = outputs.packages.x86_64-linux.bifrost.cargoTestFlags;
  postInstall = outputs.packages.x86_64-linux.bifrost.postInstall;
  apps = lib.mapAttrs (_: a: lib.mapAttrs (_: app: app.type) a) outputs.apps;
  formatter = lib.mapAttrs (_: f: {inherit (f) text;} // {inputs = map (p: p.name) f.runtimeInputs;}) outputs.formatter;
  shellPackages = lib.mapAttrs (_: s: map (p: p.name) s.default.packages) outputs.devShells;
}
