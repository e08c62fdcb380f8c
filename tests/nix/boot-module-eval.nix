# Evaluates modules/boot.nix with nixpkgs' lib and stubs for the few nixpkgs
# options and packages it touches (a full NixOS evaluation needs all of
# nixpkgs). Used by tests/tests/boot_module.rs; prints JSON.
{
  libPath,
  settingsJson,
  extraJson,
}: let
  lib = import libPath;
  drv = name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    }
    // extra;
  pkgs = {
    refind = drv "refind-0.14.2" {};
    coreutils = drv "coreutils" {};
    util-linux = drv "util-linux" {};
    efibootmgr = drv "efibootmgr" {};
    gnugrep = drv "gnugrep" {};
    writeShellScript = name: text: text;
    writeText = name: text: "/nix/store/00000000000000000000000000000000-${name}";
    stdenv.hostPlatform.isx86_64 = true;
  };
  stubs = {lib, ...}: let
    opt = type: default: lib.mkOption {inherit type default;};
    inherit (lib.types) bool str unspecified listOf;
  in {
    options = {
      assertions = opt (listOf unspecified) [];
      boot.loader.efi.efiSysMountPoint = opt str "/boot";
      boot.loader.efi.canTouchEfiVariables = opt bool false;
      boot.loader.external.enable = opt bool false;
      boot.loader.external.installHook = opt str "";
      boot.loader.systemd-boot.enable = opt bool false;
      boot.loader.grub.enable = opt bool false;
      boot.loader.refind.enable = opt bool false;
      bifrost.package = opt unspecified (drv "bifrost-0.1.0" {meta.mainProgram = "bifrost";});
      bifrost.settings = opt unspecified {};
    };
  };
  eval = lib.evalModules {
    specialArgs = {inherit pkgs;};
    modules = [
      stubs
      ../../modules/boot.nix
      {bifrost.settings = builtins.fromJSON settingsJson;}
      (builtins.fromJSON extraJson)
    ];
  };
  c = eval.config;
in {
  externalEnable = c.boot.loader.external.enable;
  hook = c.boot.loader.external.installHook;
  esp = c.boot.loader.efi.efiSysMountPoint;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
}
