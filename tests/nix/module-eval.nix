# Evaluates bifrost's NixOS module with nixpkgs' `lib.evalModules`, without
# nixpkgs itself: the nixpkgs options the module sets are declared here as
# stubs (with the types nixpkgs gives them), and a root freeform type
# accepts whatever else other bifrost modules (boot.nix) set.
# Used by tests/tests/module_eval.rs; `lib` is a local nixpkgs lib.
{
  lib,
  # Host settings (already parsed JSON), or null to use only `module`.
  settings ? null,
  # Import nixos-hardware's Surface module (a stub declaring its option).
  surface ? false,
  # Evaluate this module instead of bifrost's (a generated hardware module).
  generated ? null,
}: let
  inherit (lib) mkOption types;
  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = {
    linuxPackages = "pkgs.linuxPackages";
    linuxPackages_latest = "pkgs.linuxPackages_latest";
    writeText = name: text: builtins.toFile name text;
    stdenv.hostPlatform.system = "x86_64-linux";
  };
  opt = type: default: mkOption {inherit type default;};
  stubs = {config, ...}: {
    config._module.freeformType = types.lazyAttrsOf types.raw;
    # luksroot.nix: "fallbackToPassword is implied by systemd stage 1."
    config.assertions = [
      {
        assertion = config.boot.initrd.systemd.enable -> lib.all (d: !d.fallbackToPassword) (builtins.attrValues config.boot.initrd.luks.devices);
        message = "boot.initrd.luks.devices.<name>.fallbackToPassword is implied by systemd stage 1.";
      }
    ];
    options = {
      assertions = opt (types.listOf (types.submodule {
        options.assertion = opt types.bool true;
        options.message = opt types.str "";
      })) [];
      networking.hostName = opt types.str "nixos";
      networking.firewall.enable = opt types.bool true;
      networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [];
      networking.firewall.allowedUDPPorts = opt (types.listOf types.port) [];
      networking.nftables.enable = opt types.bool false;
      environment.systemPackages = opt (types.listOf types.package) [];
      environment.etc = opt (types.attrsOf (types.submodule {options.source = opt types.path null;})) {};
      boot.initrd.availableKernelModules = opt (types.listOf types.str) [];
      boot.initrd.kernelModules = opt (types.listOf types.str) [];
      warnings = opt (types.listOf types.str) [];
      # nixos/modules/system/boot/systemd/initrd.nix and systemd/tpm2.nix (the
      # tpm2 default: systemd built with tpm2-tss and the boot loader, as nixpkgs' is).
      boot.initrd.systemd.enable = opt types.bool false;
      boot.initrd.systemd.tpm2.enable = opt types.bool true;
      # nixos/modules/system/boot/luksroot.nix.
      boot.initrd.luks.devices = opt (types.attrsOf (types.submodule {
        options.device = opt types.str null;
        options.allowDiscards = opt types.bool false;
        options.fallbackToPassword = opt types.bool false;
        options.crypttabExtraOpts = opt (types.listOf types.singleLineStr) [];
      })) {};
      boot.kernelParams = opt (types.listOf types.str) [];
      boot.kernelPackages = opt types.raw "pkgs.linuxPackages";
      fileSystems = opt (types.attrsOf (types.submodule {
        options.device = opt (types.nullOr types.str) null;
        options.fsType = opt types.str "auto";
        options.options = opt (types.nonEmptyListOf types.str) ["defaults"];
      })) {};
      swapDevices = opt (types.listOf (types.submodule {
        options.device = opt types.str null;
        options.size = opt (types.nullOr types.ints.unsigned) null;
      })) [];
      zramSwap.enable = opt types.bool false;
      zramSwap.memoryMax = opt (types.nullOr types.int) null;
      security.auditd.enable = opt types.bool false;
      security.audit.enable = opt (types.enum [false true "lock"]) false;
      services.desktopManager.plasma6.enable = opt types.bool false;
      services.displayManager.sddm.enable = opt types.bool false;
      services.flatpak.enable = opt types.bool false;
      virtualisation.podman.enable = opt types.bool false;
      programs.direnv.enable = opt types.bool false;
      programs.direnv.nix-direnv.enable = opt types.bool true;
      nix.settings = opt (types.submodule {
        freeformType = types.attrsOf types.raw;
        options.substituters = opt (types.listOf types.str) [];
        options.trusted-public-keys = opt (types.listOf types.str) [];
      }) {};
      nix.buildMachines = opt (types.listOf (types.submodule {
        options.hostName = opt types.str null;
        options.systems = opt (types.listOf types.str) [];
        options.sshUser = opt (types.nullOr types.str) null;
        options.sshKey = opt (types.nullOr types.str) null;
        options.maxJobs = opt types.int 1;
        options.protocol = opt (types.enum [null "ssh" "ssh-ng"]) "ssh";
      })) [];
      nix.distributedBuilds = opt types.bool false;
    };
  };
  # nixos-hardware's microsoft/surface/common declares this one option.
  surfaceStub = {
    options.hardware.microsoft-surface.kernelVersion = opt (types.enum ["longterm" "stable"]) "longterm";
  };
  nixos-hardware.nixosModules.microsoft-surface-pro-intel = surfaceStub;
  bifrost = import ../../modules {
    inherit nixos-hardware;
    packages.x86_64-linux.bifrost = fakeDrv "bifrost";
  };
  modules =
    [stubs {_module.args.pkgs = pkgs;}]
    ++ (
      if generated != null
      then [generated] ++ lib.optional surface surfaceStub
      else
        [
          bifrost
          {
            bifrost.enable = true;
            bifrost.settings = settings;
          }
        ]
        ++ lib.optional surface (import ../../modules/surface-pro-8.nix {inherit nixos-hardware;})
    );
  eval = lib.evalModules {inherit modules;};
  c = eval.config;
  # The options the hardware module sets: what must match `bifrost gen hardware`.
  hardware = {
    inherit (c.boot.initrd) availableKernelModules kernelModules;
    luks = c.boot.initrd.luks.devices;
    inherit (c.boot) kernelParams kernelPackages;
    inherit (c) fileSystems swapDevices;
    zram = {inherit (c.zramSwap) enable memoryMax;};
    surfaceKernel =
      if surface
      then c.hardware.microsoft-surface.kernelVersion
      else null;
  };

  # The shape of an option tree: what tests compare with `bifrost schema`.
  shape = t:
    if t.name == "submodule"
    then {
      kind = "object";
      fields = lib.mapAttrs (_: o:
        shape o.type
        // {
          required = !(o ? default);
          default =
            if o ? default && !(builtins.isAttrs o.default) && !(lib.isType "literalExpression" o.default)
            then o.default
            else null;
        }) (removeAttrs (t.getSubOptions []) ["_module"]);
    }
    else if t.name == "listOf"
    then {
      kind = "array";
      items = shape t.nestedTypes.elemType;
    }
    else if t.name == "nullOr"
    then shape t.nestedTypes.elemType // {nullable = true;}
    else if t.name == "enum"
    then {
      kind = "enum";
      values = t.functor.payload.values or t.functor.payload;
    }
    else if t.name == "bool"
    then {kind = "boolean";}
    else if builtins.elem t.name ["int" "unsignedInt" "unsignedInt16" "intBetween" "positiveInt"]
    then {kind = "integer";}
    else if t.name == "str" || lib.hasPrefix "strMatching" t.name
    then {kind = "string";}
    else throw "module-eval.nix: no shape for option type ${t.name}";
in {
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  inherit (c) warnings;
  initrdSystemd = {
    inherit (c.boot.initrd.systemd) enable;
    tpm2 = c.boot.initrd.systemd.tpm2.enable;
  };
  settings =
    if generated == null
    then c.bifrost.effectiveSettings
    else null;
  inherit hardware;
  # The rest of what the module sets, for spot checks.
  nixos = {
    inherit (c.networking) hostName;
    firewall = c.networking.firewall.enable;
    inherit (c.networking.firewall) allowedTCPPorts;
    nftables = c.networking.nftables.enable;
    auditd = c.security.auditd.enable;
    audit = c.security.audit.enable;
    plasma6 = c.services.desktopManager.plasma6.enable;
    sddm = c.services.displayManager.sddm.enable;
    flatpak = c.services.flatpak.enable;
    podman = c.virtualisation.podman.enable;
    direnv = c.programs.direnv.enable;
    nixDirenv = c.programs.direnv.nix-direnv.enable;
    inherit (c.nix.settings) substituters trusted-public-keys;
    inherit (c.nix) buildMachines distributedBuilds;
    hostJson = c.environment.etc."bifrost/host.json".source;
    packages = map (p: p.name) c.environment.systemPackages;
  };
  settingsShape =
    if generated == null
    then shape eval.options.bifrost.settings.type
    else null;
}
