#!/usr/bin/env bash
# bifrost's test command: installs what the tests need, then runs them all.
#
# Inside `nix develop` every tool is already there. On Debian or Ubuntu the
# missing ones are installed with apt-get (as root, or through sudo);
# elsewhere the script names what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package that provides each command or file the tests use.
# devshell.nix (`nix develop`) lists the same keys with their nixpkgs
# package or variable; tests/tests/e2e/devshell_tools.rs keeps the two equal.
declare -A PKG=(
  [nix-instantiate]=nix-bin
  [qemu-system-x86_64]=qemu-system-x86
  [/usr/share/OVMF/OVMF_CODE_4M.fd]=ovmf
  [/usr/share/refind/refind/refind_x64.efi]=refind
  [/bin/busybox]=busybox-static
  [mcopy]=mtools
  [mkfs.vfat]=dosfstools
  [sgdisk]=gdisk
  [mke2fs]=e2fsprogs
  [cpio]=cpio
  [bmaptool]=bmap-tools
  [jq]=jq
  [losetup]=mount
  [cargo]=cargo
  [cc]=gcc
  [cryptsetup]=cryptsetup-bin
  [mkfs.btrfs]=btrfs-progs
  [modinfo]=kmod
  # Secure Boot tests: OVMF's secboot firmware and test keys ship in ovmf.
  [/usr/share/OVMF/OVMF_CODE_4M.secboot.fd]=ovmf
  [openssl]=openssl
  [sbsign]=sbsigntool
  [sbattach]=sbsigntool
  [objcopy]=binutils
  [strip]=binutils
  [efibootmgr]=efibootmgr
  [cert-to-efi-sig-list]=efitools
  [/usr/lib/shim/shimx64.efi.signed]=shim-signed
  # tests/tests/e2e/sb_standin.rs: what the Nix dev shell signs in place of it.
  [/usr/lib/shim/shimx64.efi]=shim-unsigned
  [pip3]=python3-pip
  # tests/tests/e2e/tpm_qemu.rs: a software TPM, systemd's TPM2 LUKS tools and
  # the TSS2 libraries they dlopen (tpm2-tools depends on all of them;
  # their package names change between releases, t64).
  [swtpm]=swtpm
  [tpm2_pcrextend]=tpm2-tools
  [systemd-cryptenroll]=systemd-cryptsetup
  [/usr/lib/systemd/systemd-cryptsetup]=systemd-cryptsetup
  [/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so]=systemd-cryptsetup
  [/usr/lib/x86_64-linux-gnu/libtss2-esys.so.0]=tpm2-tools
  [/usr/lib/x86_64-linux-gnu/libtss2-rc.so.0]=tpm2-tools
  [/usr/lib/x86_64-linux-gnu/libtss2-mu.so.0]=tpm2-tools
  [/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0]=tpm2-tools
)

# Oldest Rust that builds the workspace (rust-version in Cargo.toml).
RUST_MIN=1.85

# rustup's cargo, when the shell's PATH does not have it yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
  PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
fi

have() { if [[ $1 == /* ]]; then [[ -e $1 ]]; else command -v "$1" >/dev/null 2>&1; fi; }

missing=()
for thing in "${!PKG[@]}"; do
  case $thing in
    nix-instantiate) [[ -n ${IN_NIX_SHELL:-} ]] && continue ;;
    /usr/share/*|/usr/lib/*|/bin/busybox) [[ -n ${IN_NIX_SHELL:-} ]] && continue ;;
  esac
  have "$thing" || missing+=("${PKG[$thing]}")
done
# Debian's rustc needs the C library headers to link.
if [[ -z ${IN_NIX_SHELL:-} ]] && [[ ! -e /usr/include/stdio.h ]] && command -v apt-get >/dev/null 2>&1; then
  missing+=(libc6-dev)
fi
# A kernel for the boot tests: any /boot/vmlinuz-*, unless BIFROST_KERNEL names one.
if [[ -z ${BIFROST_KERNEL:-} ]] && ! compgen -G '/boot/vmlinuz-*' >/dev/null; then
  missing+=(linux-image-amd64)
fi

if ((${#missing[@]})); then
  # Debian 12 ships systemd-cryptenroll, systemd-cryptsetup and the TPM2
  # token plugin in `systemd`; Debian 13 split them into `systemd-cryptsetup`.
  if printf '%s\n' "${missing[@]}" | grep -qx systemd-cryptsetup && command -v apt-cache >/dev/null 2>&1 &&
    ! apt-cache show systemd-cryptsetup >/dev/null 2>&1; then
    missing=("${missing[@]/#systemd-cryptsetup/systemd}")
  fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    echo "tests/run.sh: installing ${missing[*]}" >&2
    # Debian's refind would otherwise offer to install itself onto this
    # machine's ESP; the tests only need its files.
    if printf '%s\n' "${missing[@]}" | grep -qx refind; then
      echo "refind refind/install_to_esp boolean false" | $sudo debconf-set-selections
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tests/run.sh: missing tools; install: ${missing[*]} (Debian names), or run inside 'nix develop'" >&2
    exit 1
  fi
fi

# virt-fw-vars (PyPI virt-firmware; no Debian package) puts test keys into
# OVMF variable stores for the Secure Boot tests.
if [[ -z ${IN_NIX_SHELL:-} ]] && ! command -v virt-fw-vars >/dev/null 2>&1; then
  PATH=$HOME/.local/bin:$PATH
  if ! command -v virt-fw-vars >/dev/null 2>&1; then
    echo "tests/run.sh: installing virt-firmware (pip, --user)" >&2
    # Debian 12 marks its Python as externally managed (PEP 668); a --user
    # install touches nothing of the system's packages.
    pip3 install --quiet --user --break-system-packages virt-firmware 2>/dev/null ||
      pip3 install --quiet --user virt-firmware
  fi
fi

rust_version=$(rustc --version 2>/dev/null | awk '{print $2}' || true)
if [[ -z $rust_version ]] || [[ $(printf '%s\n' "$RUST_MIN" "$rust_version" | sort -V | head -n 1) != "$RUST_MIN" ]]; then
  echo "tests/run.sh: Rust >= $RUST_MIN is needed (found: ${rust_version:-none})." >&2
  echo "  install it with rustup (https://rustup.rs), or run inside 'nix develop'" >&2
  exit 1
fi

# Tool locations for the tests; `nix develop` sets these from nixpkgs.
export BIFROST_OVMF_CODE=${BIFROST_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
export BIFROST_OVMF_VARS=${BIFROST_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
export BIFROST_REFIND_DIR=${BIFROST_REFIND_DIR:-/usr/share/refind/refind}
export BIFROST_BUSYBOX=${BIFROST_BUSYBOX:-/bin/busybox}
if [[ -z ${BIFROST_KERNEL:-} ]]; then
  BIFROST_KERNEL=$(printf '%s\n' /boot/vmlinuz-* | sort -V | tail -n 1)
  export BIFROST_KERNEL
fi

# Nix from a distribution package runs single-user here: no build users,
# no sandbox, and no substituters, so nothing waits on the network.
if [[ -z ${IN_NIX_SHELL:-} ]]; then
  export NIX_CONFIG="experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =
${NIX_CONFIG:-}"
fi

export BIFROST_SKIP_LOG=${BIFROST_SKIP_LOG:-$PWD/target/bifrost-skips.log}
mkdir -p target
: >"$BIFROST_SKIP_LOG"

cargo build --workspace --bins
cargo test --workspace "$@"

if [[ -s $BIFROST_SKIP_LOG ]]; then
  echo "tests/run.sh: these tests were skipped:" >&2
  sed 's/^/  /' "$BIFROST_SKIP_LOG" >&2
fi
