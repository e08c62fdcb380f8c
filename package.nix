{
  lib,
  rustPlatform,
}:
rustPlatform.buildRustPackage {
  pname = "bifrost";
  version = (lib.importTOML ./Cargo.toml).workspace.package.version;
  src = lib.cleanSource ./.;
  cargoLock.lockFile = ./Cargo.lock;
  cargoBuildFlags = ["-p" "bifrost-cli"];
  meta = {
    description = "Build, boot and deploy a declarative NixOS on real hardware";
    mainProgram = "bifrost";
    license = lib.licenses.mit;
  };
}
