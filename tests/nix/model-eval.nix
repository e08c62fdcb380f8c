# Evaluates a flake's `nixosConfigurations` (and every image variant of
# each) against the strict model of nixpkgs (nixpkgs-model.nix), the way
# `nix flake check` would with real nixpkgs: assertions, conflicting
# definitions, undeclared options and broken packages all fail here.
# Used by tests/tests/e2e/nixos_model.rs; prints JSON.
{
  libPath,
  # Folder of the flake to evaluate: bifrost's own, or a user's flake that
  # imports bifrost (its `bifrost` input is then bifrost's folder).
  flakeDir,
  bifrostDir ? flakeDir,
  # Extra modules added to every configuration, to try variations: a
  # function from bifrost's flake (its outputs and inputs) to a list.
  extra ? (_: []),
}: let
  lib = import libPath;
  model = import ./nixpkgs-model.nix {inherit lib;};
  systems = ["x86_64-linux" "aarch64-linux"];
  pkgs =
    model.pkgs
    // {
      alejandra = model.drv "alejandra" {meta.mainProgram = "alejandra";};
      writeShellApplication = a: model.drv a.name {inherit (a) text runtimeInputs;};
      runCommand = n: _: script: model.drv n {inherit script;};
    };
  nixpkgs = {
    lib = lib // {nixosSystem = model.nixosSystem;};
    outPath = "/nix/store/11111111111111111111111111111111-source";
    legacyPackages = lib.genAttrs systems (_: pkgs);
  };
  nixos-hardware =
    model.nixos-hardware
    // {outPath = "/nix/store/22222222222222222222222222222222-source";};
  withExtra = f: args: f (args // {modules = args.modules ++ extra bifrost;});
  nixpkgs' = nixpkgs // {lib = nixpkgs.lib // {nixosSystem = withExtra model.nixosSystem;};};

  callFlake = dir: inputs: let
    outputs = (import (dir + "/flake.nix")).outputs (inputs // {inherit self;});
    self =
      outputs
      // {
        outPath = dir;
        inherit inputs outputs;
      };
  in
    self;
  bifrost = callFlake bifrostDir {
    nixpkgs = nixpkgs';
    inherit nixos-hardware;
  };
  flake =
    if flakeDir == bifrostDir
    then bifrost
    else
      callFlake flakeDir {
        nixpkgs = nixpkgs';
        inherit bifrost nixos-hardware;
      };

  failed = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  check = what: c: v:
    if failed c != []
    then throw "${what}: failed assertions:\n- ${lib.concatStringsSep "\n- " (failed c)}"
    else v;
  hook = h:
    if h ? text
    then h.text
    else toString h;
  # The settings file a system's boot hook hands to `bifrost esp install`.
  hookSettings = toplevel: builtins.fromJSON toplevel.etc."bifrost/host.json".source.text;
  media = i: {
    inherit (i) swapDevices luks;
    fileSystems = lib.mapAttrs (_: f: {inherit (f) device fsType;}) i.fileSystems;
    kernelModules = map (p: p.name) i.kernelModules;
  };
  summary = name: sys: let
    c = sys.config;
    images = c.system.build.images;
  in
    check name c {
      toplevel = c.system.build.toplevel.name;
      # The system's checks, and the command of bifrost's settings check
      # with the file it checks.
      checks = map (p: p.name) c.system.checks;
      passedChecks = c.system.build.toplevel.passedChecks;
      settingsCheck = c.bifrost.settingsCheck.buildCommand;
      settingsFile = toString c.bifrost.settingsFile;
      installHook = hook c.system.build.installBootLoader;
      hookSettings = hookSettings c.system.build.toplevel;
      kernelParams = c.boot.kernelParams;
      kernelModules = map (p: p.name) c.system.build.toplevel.kernelModules;
      networkmanager = c.networking.networkmanager.enable;
      packages = map (p: p.name) c.environment.systemPackages;
      experimentalFeatures = c.nix.settings.experimental-features;
      xdgPortal = c.xdg.portal.enable;
      images = {
        raw-efi = media images.raw-efi // {installHook = hook images.raw-efi.installBootLoader;} // {inherit (images.raw-efi.passthru) filePath;} // {hookSettings = hookSettings images.raw-efi.toplevel;};
        qemu-efi = media images.qemu-efi // {installHook = hook images.qemu-efi.installBootLoader;} // {inherit (images.qemu-efi.passthru) filePath;} // {hookSettings = hookSettings images.qemu-efi.toplevel;};
        iso = media images.iso // {inherit (images.iso.passthru) filePath;};
        iso-installer =
          media images.iso-installer
          // {
            inherit (images.iso-installer) networkmanager packages env;
            inherit (images.iso-installer.passthru) filePath;
            storeContents = map (p: p.name or (toString p)) images.iso-installer.storeContents;
            etc = lib.mapAttrs (_: toString) images.iso-installer.etc;
          };
      };
      vm = media c.system.build.vm;
    };
in {
  configurations = lib.mapAttrs summary flake.nixosConfigurations;
  # What the flake's `checks.x86_64-linux.nixos-eval` forces.
  nixosEvalCheck = flake.checks.x86_64-linux.nixos-eval.text;
  names = builtins.attrNames flake.nixosConfigurations;
}
