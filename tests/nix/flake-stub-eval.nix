# Evaluates flake.nix outputs with the real nixpkgs lib and stand-in packages
# (nixpkgs itself is not reachable here): catches misspelt outputs, wrong
# function shapes and the dev-shell variables. Used by tests/tests/e2e/flake_eval.rs.
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
    names = ["cargo" "rustc" "clippy" "rustfmt" "rust-analyzer" "nix" "alejandra" "qemu" "mtools" "dosfstools" "gptfdisk" "e2fsprogs" "util-linux" "cpio" "bmaptool" "jq" "refind" "cryptsetup" "btrfs-progs" "kmod" "gcc" "openssl" "sbsigntool" "binutils" "efitools" "mokutil" "efibootmgr" "swtpm" "tpm2-tools" "systemd" "tpm2-tss"];
    pkgs =
      lib.genAttrs names (n: drv n {})
      // {
        inherit system lib;
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
        # pkgs/applications/virtualization/OVMF/default.nix: the `fd`
        # output and its passthru; `override` takes only the arguments the
        # real function declares, and `OVMF_VARS.ms.fd` exists only with
        # `msVarsTemplate`.
        OVMF = let
          ovmf = args: let
            known = ["secureBoot" "msVarsTemplate" "fdSize2MB" "fdSize4MB" "systemManagementModeRequired" "httpSupport" "tpmSupport" "tlsSupport" "debug"];
            bad = lib.subtractLists known (builtins.attrNames args);
            tag = lib.concatStrings (lib.mapAttrsToList (n: v: lib.optionalString v "-${n}") args);
            fd = "/nix/store/x-OVMF${tag}-fd-${system}";
          in
            assert lib.assertMsg (bad == []) "OVMF.override: unknown ${toString bad}";
            assert lib.assertMsg ((args.msVarsTemplate or false) -> (args.secureBoot or false)) "OVMF: msVarsTemplate needs fdSize4MB (secureBoot)";
              drv "OVMF${tag}" {
                inherit fd;
                firmware = "${fd}/FV/OVMF_CODE.fd";
                variables = "${fd}/FV/OVMF_VARS.fd";
                override = a: ovmf (args // a);
              };
        in
          ovmf {};
        # pkgs/by-name/sh/shim-unsigned: installs into $out/share/shim.
        shim-unsigned = drv "shim-${system}" {};
        python3Packages.virt-firmware = drv "virt-firmware" {};
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
        runCommand = n: a: script: drv n {inherit script;} // {inputs = map (p: p.name) (a.nativeBuildInputs or []);};
        writeText = n: text: drv n {inherit text;};
      };
  in
    pkgs;
  nixpkgs = {
    inherit lib;
    outPath = "/nix/store/00000000000000000000000000000000-source";
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
  # What tests/tests/e2e/devshell_tools.rs compares with tests/run.sh.
  shellCommands = lib.mapAttrs (_: s: lib.mapAttrs (_: p: p.name) s.default.passthru.commands) outputs.devShells;
  shellFiles = lib.mapAttrs (_: s: s.default.passthru.files) outputs.devShells;
}
