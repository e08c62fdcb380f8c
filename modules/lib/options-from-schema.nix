# JSON Schema (as schemars writes it for bifrost-core's spec types) → NixOS
# options: types, defaults, descriptions and examples, all from the schema.
#
# bifrost-core/src/spec/types.rs owns the settings; this function is the only
# place that knows how its schema maps to option types, so adding a field in
# Rust and regenerating modules/generated/settings-schema.json adds the
# option. A schema construct it does not know fails the evaluation with the
# path of the property.
{lib}: schema: let
  inherit (lib) mkOption types;
  defs = schema."$defs" or {};

  # A `$ref` node with its definition merged under the node's own keys (the
  # field's description wins over the type's).
  deref = node:
    if node ? "$ref"
    then deref defs.${lib.removePrefix "#/$defs/" node."$ref"} // removeAttrs node ["$ref"]
    else node;

  isNull = n: (n.type or null) == "null";

  typeOf = path: node: let
    n = deref node;
    alts = map deref (n.oneOf or n.anyOf or []);
    nonNull = builtins.filter (a: !isNull a) alts;
    nullable = inner:
      if builtins.length nonNull < builtins.length alts
      then types.nullOr inner
      else inner;
  in
    if alts != []
    then
      nullable (
        if builtins.all (a: a ? const) nonNull
        then types.enum (map (a: a.const) nonNull)
        else if builtins.length nonNull == 1
        then typeOf path (builtins.head nonNull)
        else throw "options-from-schema.nix: ${path}: alternatives of several kinds have no option type"
      )
    else if builtins.isList (n.type or null)
    then let
      kinds = builtins.filter (t: t != "null") n.type;
      inner = plain path (n // {type = builtins.head kinds;});
    in
      if builtins.length kinds != 1
      then throw "options-from-schema.nix: ${path}: a value of several types has no option type"
      else if builtins.elem "null" n.type
      then types.nullOr inner
      else inner
    else plain path n;

  plain = path: n:
    if n ? enum
    then types.enum n.enum
    else if n.type == "object"
    then types.submodule {options = optionsOf path n;}
    else if n.type == "array"
    # `x-nix-items`: constraints on the items for the option type only
    # (bifrost's own validation words them better than a JSON Schema).
    then types.listOf (typeOf "${path}.*" (deref n.items // n.x-nix-items or {}))
    else if n.type == "boolean"
    then types.bool
    else if n.type == "integer"
    then
      if (n.format or "") == "uint16"
      then types.port
      else if n ? minimum && n ? maximum
      then types.ints.between n.minimum n.maximum
      else if (n.minimum or (-1)) >= 0
      then types.ints.unsigned
      else types.int
    else if n.type == "string"
    then types.str
    else throw "options-from-schema.nix: ${path}: no option type for schema type ${builtins.toJSON n.type}";

  # What an optional field holds when unset: a section is `{}` (its fields
  # bring their own defaults), a nullable field `null`, a list `[]`, else
  # the schema's default.
  defaultOf = path: n:
    if (n.type or null) == "object"
    then {}
    else if n ? default
    then n.default
    else if (lib.isList (n.type or null) && builtins.elem "null" n.type) || builtins.any isNull (n.anyOf or n.oneOf or [])
    then null
    else if (n.type or null) == "array"
    then []
    else throw "options-from-schema.nix: ${path} is optional but has no default in the schema";

  optionOf = path: required: prop: let
    n = deref prop;
  in
    mkOption ({
        type = typeOf path prop;
        description = n.description or (throw "options-from-schema.nix: ${path} has no description; write a doc comment on the Rust field");
      }
      // lib.optionalAttrs (!required) {default = defaultOf path n;}
      // lib.optionalAttrs (n ? examples && n.examples != []) {example = builtins.head n.examples;});

  optionsOf = path: n:
    lib.mapAttrs (name: optionOf "${path}.${name}" (builtins.elem name (n.required or []))) (n.properties or {});
in
  types.submodule {options = optionsOf "settings" schema;}
