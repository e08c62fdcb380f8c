#!/usr/bin/env bash
# The seed's orchestrator: `./build.sh build raw|iso|qcow|vm [args…]` runs
# this flake's matching app (`nix run .#build-<format> -- args…`), which runs
# `bifrost build`. See docs/build.md.
set -euo pipefail

# Builtins only until nix runs: this must work where PATH has nothing else.
say() {
  local text
  IFS= read -r -d '' text || true
  printf '%s' "$text" >&2
}

usage() {
  say <<'USAGE'
usage: ./build.sh build raw|iso|qcow|vm [bifrost build arguments…]

  raw   bootable disk image of the host (2_raw/nixos.raw): dd to a disk or USB stick
  iso   installer ISO carrying the host's system (2_raw/nixos.iso)
  qcow  the disk image as qcow2, for VMs (2_raw/nixos.qcow2)
  vm    quick-test VM runner (2_raw/nixos-vm)

Arguments after the format go to `bifrost build` (for example --out DIR).
USAGE
}

if [[ $# -lt 2 || $1 != build ]]; then
  usage
  exit 2
fi
format=$2
shift 2
case $format in
  raw | iso | qcow | vm) ;;
  *)
    printf "build.sh: unknown format '%s'\n" "$format" >&2
    usage
    exit 2
    ;;
esac

if ! command -v nix >/dev/null 2>&1; then
  say <<'NONIX'
build.sh: `nix` is not installed here.

On Fedora Kinoite (read-only /, so the usual Nix installers fail at /nix),
run Nix in a container with its store kept in the output layout's 0_podman/
(default /mnt/kinoite/@images/a_nixos_host/0_podman), for example:

  out=/mnt/kinoite/@images/a_nixos_host
  mkdir -p "$out/0_podman/nix"
  # once: seed the kept store with the image's own /nix
  podman run --rm --security-opt label=disable -v "$out/0_podman/nix:/seed" \
    docker.io/nixos/nix cp -a /nix/. /seed/
  # each build (/dev/kvm: the disk images are made in a VM)
  podman run --rm -it --security-opt label=disable --device /dev/kvm \
    -v "$out/0_podman/nix:/nix" -v "$out:$out" -v "$PWD:/src" -w /src \
    docker.io/nixos/nix ./build.sh build iso --out "$out"

or install Nix inside a toolbox (`toolbox create bifrost && toolbox enter
bifrost`, then the installer from https://nixos.org/download). Step by step:
docs/build.md, "Building from Kinoite".
NONIX
  exit 127
fi

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
here=$(cd "$here" && pwd)
exec nix --extra-experimental-features 'nix-command flakes' run "$here#build-$format" -- "$@"
