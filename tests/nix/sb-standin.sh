#!/usr/bin/env bash
# Secure Boot test material for the Nix dev shell, where Debian's ovmf
# (snakeoil keys and VARS) and shim-signed (shim signed by Microsoft's UEFI
# CA) do not exist. flake.nix runs it in a derivation; it runs unchanged on
# Debian against Debian's files (tests/tests/e2e/sb_standin.rs).
#
#   sb-standin.sh OUT VARS MS_VARS SHIM_DIR
#
# VARS     the Secure Boot firmware's empty (setup mode) variable store
# MS_VARS  the same with Microsoft's keys enrolled (nixpkgs' OVMF_VARS.ms.fd)
# SHIM_DIR unsigned shimx64.efi and mmx64.efi (nixpkgs' shim-unsigned)
#
# OUT gets, under Debian's names (so the tests need no second code path):
#   PkKek-1-snakeoil.key/.pem  a test key (its PEM encrypted with the
#                              passphrase `snakeoil`, as Debian's)
#   OVMF_VARS_4M.snakeoil.fd   PK, KEK and db = the test cert, Secure Boot on
#   OVMF_VARS_4M.ms.fd         MS_VARS plus the test cert in db: it stands in
#                              for Microsoft's signature on shim
#   shim/shimx64.efi.signed    shim signed by the test key
#   shim/mmx64.efi.signed      MokManager signed by the test key
#
# What this cannot prove: that a shim signed by Microsoft boots. Only the
# Debian run (shim-signed) covers that; docs/development.md says so.
set -euo pipefail
out=$1 vars=$2 ms_vars=$3 shim_dir=$4
owner=a0baa8a3-041d-48a8-bc87-c36d121b5e3d
mkdir -p "$out/shim"
plain=$(mktemp)
trap 'rm -f "$plain"' EXIT
openssl req -quiet -new -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
  -subj "/CN=bifrost dev shell Secure Boot test key/" \
  -keyout "$plain" -out "$out/PkKek-1-snakeoil.pem" 2>/dev/null
openssl pkey -in "$plain" -aes256 -passout pass:snakeoil -out "$out/PkKek-1-snakeoil.key"
cert=$out/PkKek-1-snakeoil.pem
virt-fw-vars -i "$vars" -o "$out/OVMF_VARS_4M.snakeoil.fd" \
  --set-pk "$owner" "$cert" --add-kek "$owner" "$cert" --add-db "$owner" "$cert" --sb
virt-fw-vars -i "$ms_vars" -o "$out/OVMF_VARS_4M.ms.fd" --add-db "$owner" "$cert"
for f in shimx64.efi mmx64.efi; do
  sbsign --key "$plain" --cert "$cert" --output "$out/shim/$f.signed" "$shim_dir/$f" 2>/dev/null
done
