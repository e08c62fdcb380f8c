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
    # What the tests boot inside QEMU is x86_64 (OVMF, rEFInd, kernel,
    # busybox) whatever the machine running them; on other systems it is
    # cross-built.
    guestPkgs = pkgs:
      if pkgs.stdenv.hostPlatform.isx86_64
      then pkgs
      else pkgs.pkgsCross.gnu64;
  in {
    # --- packages (foundation) ---
    packages = forAllSystems (pkgs: rec {
      bifrost = pkgs.callPackage ./package.nix {};
      default = bifrost;
    });

    # --- formatter ---
    formatter = forAllSystems (pkgs: pkgs.alejandra);

    # --- devShells / checks (foundation) ---
    devShells = forAllSystems (pkgs: let
      guest = guestPkgs pkgs;
      busybox = guest.pkgsStatic.busybox;
    in {
      default = pkgs.mkShell {
        packages = with pkgs; [
          # Rust
          cargo
          rustc
          clippy
          rustfmt
          rust-analyzer
          # Nix
          nix
          alejandra
          # images, ESPs and VMs
          qemu
          mtools
          dosfstools
          gptfdisk
          e2fsprogs
          util-linux
          cpio
          bmaptool
          jq
        ];
        # The real tools the end-to-end tests use (tests/src/lib.rs reads
        # these; tests/run.sh sets Debian's paths when they are unset).
        BIFROST_OVMF_CODE = guest.OVMF.firmware;
        BIFROST_OVMF_VARS = guest.OVMF.variables;
        BIFROST_REFIND_DIR = "${guest.refind}/share/refind";
        BIFROST_KERNEL = "${guest.linuxPackages.kernel}/${guest.stdenv.hostPlatform.linux-kernel.target}";
        BIFROST_BUSYBOX = "${busybox}/bin/busybox";
        RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
        shellHook = ''
          echo "bifrost dev shell: run tests/run.sh for the whole test suite" >&2
        '';
      };
    });

    checks = forAllSystems (pkgs: let
      bifrost = self.packages.${pkgs.stdenv.hostPlatform.system}.bifrost;
      src = lib.cleanSource ./.;
    in {
      # The package, built with `cargo test --workspace` in its check phase.
      inherit bifrost;
      clippy = bifrost.overrideAttrs (old: {
        pname = "bifrost-clippy";
        nativeBuildInputs = old.nativeBuildInputs ++ [pkgs.clippy];
        buildPhase = ''
          runHook preBuild
          cargo clippy --offline --workspace --all-targets -- -D warnings
          runHook postBuild
        '';
        doCheck = false;
        installPhase = "mkdir -p $out";
      });
      rustfmt = pkgs.runCommand "bifrost-rustfmt" {nativeBuildInputs = [pkgs.rustfmt];} ''
        cd ${src}
        find . -name '*.rs' -not -path './target/*' -print0 \
          | xargs -0 rustfmt --check --edition 2021
        mkdir -p $out
      '';
      nix-format = pkgs.runCommand "bifrost-nix-format" {nativeBuildInputs = [pkgs.alejandra];} ''
        alejandra --check ${src}
        mkdir -p $out
      '';
    });

    # --- NixOS modules (hardware, storage, boot, security, desktop) and hosts ---
    nixosModules = rec {
      bifrost = import ./modules {inherit nixos-hardware;};
      default = bifrost;
    };

    # --- apps (build driver) ---
  };
}
