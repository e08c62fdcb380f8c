# The part of nixpkgs `lib` that modules/lib/hardware-config.nix (and the
# file `bifrost gen hardware` writes around it) uses, so CI, which cannot
# fetch nixpkgs, evaluates the storage and hardware layout with real Nix.
# Each definition is nixpkgs' own; any other `lib.X` is an error, as it
# would be a name this subset does not vouch for.
let
  # lib/modules.nix: mkIf, mkMerge, mkOverride, mkForce.
  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
in {
  inherit mkIf mkMerge mkOverride;
  mkForce = mkOverride 50;
  # lib/attrsets.nix
  nameValuePair = name: value: {inherit name value;};
  optionalAttrs = cond: as:
    if cond
    then as
    else {};
  # lib/lists.nix
  optional = cond: elem:
    if cond
    then [elem]
    else [];
  unique = builtins.foldl' (acc: e:
    if builtins.elem e acc
    then acc
    else acc ++ [e]) [];
}
