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
  # Every crate's tests, the end-to-end ones included: those needing a tool
  # the sandbox lacks (nix, QEMU, OVMF) skip themselves there.
  cargoTestFlags = ["--workspace"];
  meta = {
    description = "Build, boot and deploy a declarative NixOS on real hardware";
    mainProgram = "bifrost";
    license = lib.licenses.mit;
  };
}
