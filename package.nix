{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
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
  nativeBuildInputs = [installShellFiles];
  # Completions and man pages come from the clap definitions, so they need
  # the built binary to run on the build machine.
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd bifrost \
      --bash <($out/bin/bifrost completions bash) \
      --fish <($out/bin/bifrost completions fish) \
      --zsh <($out/bin/bifrost completions zsh)
    $out/bin/bifrost completions man --dir man
    installManPage man/*.1
  '';
  meta = {
    description = "Build, boot and deploy a declarative NixOS on real hardware";
    mainProgram = "bifrost";
    license = lib.licenses.mit;
  };
}
