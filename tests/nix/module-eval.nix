# Evaluates bifrost's NixOS module with nixpkgs' `lib.evalModules`, without
# nixpkgs itself: nixpkgs-model.nix declares the nixpkgs options bifrost sets
# or reads (strictly: an undeclared one is an error) and makes the
# definitions nixpkgs' own modules make on them.
# Used by tests/tests/e2e/module_eval.rs; `lib` is a local nixpkgs lib.
{
  lib,
  # Host settings (already parsed JSON), or null to use only `module`.
  settings ? null,
  # Import nixos-hardware's Surface module (a stub declaring its option).
  surface ? false,
  # Evaluate this module instead of bifrost's (a generated hardware module).
  generated ? null,
  # `bifrost.package` (a real package, with `buildable`), else a stand-in.
  package ? null,
  # Real writeText and runCommandLocal, so `settingsCheck` can be built.
  buildable ? package != null,
}: let
  model = import ./nixpkgs-model.nix {inherit lib buildable;};
  inherit (model) pkgs nixos-hardware;
  surfaceModule = nixos-hardware.nixosModules.microsoft-surface-pro-intel;
  bifrost = import ../../modules {
    inherit nixos-hardware;
    packages.x86_64-linux.bifrost = model.drv "bifrost" {meta.mainProgram = "bifrost";};
  };
  modules =
    model.baseModules
    ++ (
      if generated != null
      then [generated] ++ lib.optional surface surfaceModule
      else
        [
          bifrost
          {
            bifrost.enable = true;
            bifrost.settings = settings;
          }
        ]
        ++ lib.optional (package != null) {bifrost.package = package;}
        ++ lib.optional surface (import ../../modules/surface-pro-8.nix {inherit nixos-hardware;})
    );
  eval = lib.evalModules {inherit modules;};
  c = eval.config;
  # The options the hardware module sets: what must match `bifrost gen hardware`.
  hardware = {
    inherit (c.boot.initrd) availableKernelModules kernelModules;
    luks = c.boot.initrd.luks.devices;
    inherit (c.boot) kernelParams;
    kernelPackages = c.boot.kernelPackages.kernel.name;
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
  # The system's checks (names), and the one that runs `bifrost check`.
  systemChecks = map (p: p.name) c.system.checks;
  inherit (c.bifrost) settingsCheck;
  passedChecks = c.system.build.toplevel.passedChecks;
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
    users = {
      inherit (c.users) mutableUsers;
      users = lib.mapAttrs (_: u: {inherit (u) isNormalUser uid group extraGroups hashedPasswordFile openssh;}) c.users.users;
      groups = lib.mapAttrs (_: g: {inherit (g) gid;}) c.users.groups;
      sudo = c.security.sudo.enable;
      sshd = c.services.openssh.enable;
    };
  };
  settingsShape =
    if generated == null
    then shape eval.options.bifrost.settings.type
    else null;
}
