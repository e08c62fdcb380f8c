# The flake's `apps` evaluated without nixpkgs: a stand-in lib (or the real
# one, from `libPath`) and stand-in packages, so the test can read and run
# each app's script. `bifrost` is a folder whose bin/bifrost prints its
# arguments.
{
  flake,
  bifrost,
  libPath ? "",
}: let
  pair = name: value: {inherit name value;};
  stubLib = {
    genAttrs = names: f: builtins.listToAttrs (map (name: pair name (f name)) names);
    getExe = p: "${p.outPath}/bin/${p.meta.mainProgram}";
    escapeShellArg = a: "'${builtins.replaceStrings ["'"] ["'\\''"] (toString a)}'";
  };
  lib =
    if libPath == ""
    then stubLib
    else import libPath;
  pkgs = system: {
    stdenv.hostPlatform.system = system;
    writeShellScript = name: text: text;
    callPackage = _: _: throw "packages are not evaluated here";
    alejandra = throw "not evaluated here";
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs ["x86_64-linux" "aarch64-linux"] pkgs;
  };
  self =
    outputs
    // {
      outPath = "/flake-source";
      rev = "0123456789abcdef0123456789abcdef01234567";
      packages = lib.genAttrs ["x86_64-linux" "aarch64-linux"] (_: {
        bifrost = {
          type = "derivation";
          name = "bifrost";
          outPath = bifrost;
          meta.mainProgram = "bifrost";
        };
      });
    };
  outputs = (import flake).outputs {
    inherit self nixpkgs;
    nixos-hardware = {};
  };
in
  builtins.mapAttrs (_: a: a.program) outputs.apps.x86_64-linux
