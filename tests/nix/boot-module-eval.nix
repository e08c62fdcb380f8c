# Evaluates modules/boot.nix with nixpkgs' lib against the strict model of
# nixpkgs (nixpkgs-model.nix; a full NixOS evaluation needs all of nixpkgs).
# Used by tests/tests/e2e/boot_module.rs; prints JSON.
{
  libPath,
  settingsJson,
  extraJson,
}: let
  lib = import libPath;
  model = import ./nixpkgs-model.nix {inherit lib;};
  pkgs = model.pkgs // {refind = model.drv "refind-0.14.2" {};};
  # boot.nix alone: the bifrost options it reads but does not declare.
  bifrostStubs = {
    options.bifrost.package = lib.mkOption {
      type = lib.types.package;
      default = model.drv "bifrost-0.1.0" {meta.mainProgram = "bifrost";};
    };
    options.bifrost.settings = lib.mkOption {type = lib.types.unspecified;};
    # default.nix's settingsFile, which the hook hands to `bifrost esp install`.
    options.bifrost.settingsFile = lib.mkOption {
      type = lib.types.unspecified;
      default = pkgs.writeText "bifrost-host.json" settingsJson;
    };
  };
  eval = lib.evalModules {
    modules =
      model.baseModules
      ++ [
        {_module.args.pkgs = lib.mkForce pkgs;}
        bifrostStubs
        ../../modules/boot.nix
        {bifrost.settings = builtins.fromJSON settingsJson;}
        (builtins.fromJSON extraJson)
      ];
  };
  c = eval.config;
in {
  externalEnable = c.boot.loader.external.enable;
  hook = c.boot.loader.external.installHook.text;
  esp = c.boot.loader.efi.efiSysMountPoint;
  settingsFile = "${c.bifrost.settingsFile}";
  failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
}
