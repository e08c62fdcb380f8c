# bifrost.settings: the host settings document as NixOS options.
#
# The option tree is made from the settings schema that bifrost-core writes
# from its Rust types (bifrost-core/src/spec/types.rs, the single source of
# truth) into generated/settings-schema.json: same camelCase names, enums,
# defaults, descriptions and examples. Adding a setting is a Rust change and
# `BIFROST_REGENERATE=1 cargo test -p bifrost-core --lib nixdata`.
# `bifrost.settings = lib.importJSON ./host.json;` loads a host file as is.
{lib, ...}: {
  options.bifrost.settings = lib.mkOption {
    description = ''
      The host settings: the one description of this machine that both the
      NixOS configuration and the `bifrost` binary read. Mirrors
      `bifrost schema`; load a host file with `lib.importJSON ./host.json`.
    '';
    example = lib.literalExpression "lib.importJSON ./hosts/surface-pro-8/host.json";
    type = import ./lib/options-from-schema.nix {inherit lib;} (lib.importJSON ./generated/settings-schema.json);
  };
}
