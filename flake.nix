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
      # One static (musl) binary that runs on Fedora Kinoite as it is, where
      # Nix cannot be installed: `bifrost esp refresh-kinoite` (docs/kinoite.md).
      bifrost-static = pkgs.pkgsStatic.callPackage ./package.nix {};
    });

    # --- formatter ---
    # Nix >= 2.25 runs the formatter with no arguments, and plain alejandra
    # then formats standard input (it waits on a terminal): no arguments
    # means the whole flake, `.`.
    formatter = forAllSystems (pkgs:
      pkgs.writeShellApplication {
        name = "bifrost-fmt";
        runtimeInputs = [pkgs.alejandra];
        text = ''
          if [ "$#" -eq 0 ]; then set -- .; fi
          exec alejandra "$@"
        '';
      });

    # --- devShells / checks (foundation) ---
    devShells = forAllSystems (pkgs: let
      guest = guestPkgs pkgs;
      busybox = guest.pkgsStatic.busybox;
    in {
      default = import ./devshell.nix {
        inherit pkgs guest busybox;
        nixpkgsLib = "${nixpkgs}/lib";
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
      # Every host file passes `bifrost check`.
      hosts = pkgs.runCommand "bifrost-hosts-check" {nativeBuildInputs = [bifrost];} ''
        for f in ${./hosts}/*/host.json; do
          bifrost check "$f"
        done
        mkdir -p $out
      '';
      # Every NixOS configuration, its VM and every image variant `bifrost
      # build` uses evaluate: their derivation paths are forced, nothing is
      # built (the context is dropped, so the check does not depend on them,
      # and any system can run it).
      nixos-eval = let
        variants = ["raw-efi" "qemu-efi" "iso" "iso-installer"];
        drvs = name: c: let
          b = c.config.system.build;
        in
          ["${name} toplevel ${b.toplevel.drvPath}" "${name} vm ${b.vm.drvPath}"]
          ++ map (v: "${name} ${v} ${b.images.${v}.drvPath}") variants;
        listing = lib.concatStringsSep "\n" (lib.concatLists (lib.mapAttrsToList drvs self.nixosConfigurations));
      in
        pkgs.writeText "bifrost-nixos-eval" (builtins.unsafeDiscardStringContext listing);
    });

    # --- NixOS modules (hardware, storage, boot, security, desktop) and hosts ---
    # nixos-hardware's Surface module sets the kernel unconditionally and
    # imports cannot depend on bifrost.settings, so the Surface gets its own
    # module (default + nixos-hardware's microsoft-surface-pro-intel).
    #
    # Each module has a `key`, so the module system imports it once however
    # often it is reached (default and surface-pro-8 together, say).
    nixosModules = rec {
      bifrost = {
        key = "bifrost#nixosModules.bifrost";
        imports = [
          (import ./modules {
            inherit nixos-hardware;
            inherit (self) packages;
          })
        ];
      };
      default = bifrost;
      surface-pro-8 = {
        key = "bifrost#nixosModules.surface-pro-8";
        imports = [
          bifrost
          (import ./modules/surface-pro-8.nix {inherit nixos-hardware;})
        ];
      };
    };

    # The installer of each host carries this flake (`self`, with its
    # inputs); a flake that imports bifrost sets its own `self` there.
    nixosConfigurations = let
      host = module: dir:
        lib.nixosSystem {
          modules = [module dir {bifrost.installer.flake = self;}];
        };
    in {
      surface-pro-8 = host self.nixosModules.surface-pro-8 ./hosts/surface-pro-8;
      example-vm = host self.nixosModules.default ./hosts/example-vm;
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
      # Nix sets `rev` on clean git flakes and, since 2.16, `dirtyRev` on
      # dirty ones; neither on `path:` flakes (or dirty ones on older Nix).
      dirty =
        if self ? rev
        then "0"
        else if self ? dirtyRev
        then "1"
        else "";
      app = format: {
        type = "app";
        program = "${pkgs.writeShellScript "bifrost-build-${format}" ''
          export BIFROST_FLAKE_REVISION=${lib.escapeShellArg (self.rev or self.dirtyRev or "")}
          export BIFROST_FLAKE_DIRTY=${dirty}
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
