# The dev shell (`nix develop`): every tool and every tool variable the test
# suite needs, so `tests/run.sh` runs the same tests here as on Debian.
#
# `commands` and `files` mirror the PKG table of tests/run.sh key by key
# (tests/tests/e2e/devshell_tools.rs compares them, and checks that every
# `BIFROST_*` tool variable the tests read is set here).
{
  pkgs,
  # x86_64 packages for what runs inside the test guests (the same as
  # `pkgs` on x86_64; cross-built on other systems).
  guest,
  busybox,
  nixpkgsLib,
}: let
  # Secure Boot firmware (SMM, 4 MiB) with a VARS template holding
  # Microsoft's keys: pkgs/applications/virtualization/OVMF/default.nix
  # (`secureBoot`, `msVarsTemplate`; `${fd}/FV/OVMF_VARS.ms.fd`).
  ovmfSecure = guest.OVMF.override {
    secureBoot = true;
    msVarsTemplate = true;
  };
  shim = guest.shim-unsigned;
  # Debian's snakeoil keys and Microsoft-signed shim have no nixpkgs
  # counterpart: tests/nix/sb-standin.sh makes test keys, VARS that trust
  # them, and shim signed with them (its header says what that cannot prove).
  sbStandin =
    pkgs.runCommand "bifrost-sb-test-material" {
      nativeBuildInputs = [pkgs.openssl pkgs.sbsigntool pkgs.python3Packages.virt-firmware];
    } ''
      bash ${./tests/nix/sb-standin.sh} $out ${ovmfSecure.variables} ${ovmfSecure.fd}/FV/OVMF_VARS.ms.fd ${shim}/share/shim
    '';
  systemd = guest.systemd;

  # Each command of tests/run.sh's PKG table and the package giving it.
  commands = with pkgs; {
    nix-instantiate = nix;
    qemu-system-x86_64 = qemu;
    mcopy = mtools;
    "mkfs.vfat" = dosfstools;
    sgdisk = gptfdisk;
    mke2fs = e2fsprogs;
    cpio = cpio;
    bmaptool = bmaptool;
    jq = jq;
    losetup = util-linux;
    cargo = cargo;
    cc = gcc;
    cryptsetup = cryptsetup;
    "mkfs.btrfs" = btrfs-progs;
    modinfo = kmod;
    openssl = openssl;
    sbsign = sbsigntool;
    sbattach = sbsigntool;
    objcopy = binutils;
    strip = binutils;
    efibootmgr = efibootmgr;
    cert-to-efi-sig-list = efitools;
    # Debian installs virt-firmware with pip; nixpkgs packages it.
    pip3 = python3Packages.virt-firmware;
    swtpm = swtpm;
    tpm2_pcrextend = tpm2-tools;
    systemd-cryptenroll = systemd;
  };
  # Each file of tests/run.sh's PKG table (Debian's path) and the variable
  # that names its counterpart here.
  files =
    {
      "/usr/share/OVMF/OVMF_CODE_4M.fd" = "BIFROST_OVMF_CODE";
      "/usr/share/refind/refind/refind_x64.efi" = "BIFROST_REFIND_DIR";
      "/bin/busybox" = "BIFROST_BUSYBOX";
      "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd" = "BIFROST_OVMF_SECBOOT_CODE";
      "/usr/lib/shim/shimx64.efi.signed" = "BIFROST_SHIM";
      "/usr/lib/shim/shimx64.efi" = "BIFROST_SHIM_UNSIGNED_DIR";
      "/usr/lib/systemd/systemd-cryptsetup" = "BIFROST_SYSTEMD_CRYPTSETUP";
      "/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so" = "BIFROST_CRYPTSETUP_TPM2_TOKEN";
    }
    # The TPM2 software stack's libraries: one folder holds them all.
    // pkgs.lib.genAttrs
    (map (l: "/usr/lib/x86_64-linux-gnu/libtss2-${l}.so.0") ["esys" "rc" "mu" "tcti-device"])
    (_: "BIFROST_TSS2_LIB_DIR");
in
  pkgs.mkShell {
    packages =
      pkgs.lib.unique (builtins.attrValues commands)
      ++ (with pkgs; [
        rustc
        clippy
        rustfmt
        rust-analyzer
        alejandra
        mokutil
      ]);
    # The real tools the end-to-end tests use (tests/src/lib.rs and the
    # tests read these; tests/run.sh sets Debian's paths when unset).
    BIFROST_OVMF_CODE = guest.OVMF.firmware;
    BIFROST_OVMF_VARS = guest.OVMF.variables;
    BIFROST_REFIND_DIR = "${guest.refind}/share/refind";
    BIFROST_KERNEL = "${guest.linuxPackages.kernel}/${guest.stdenv.hostPlatform.linux-kernel.target}";
    BIFROST_BUSYBOX = "${busybox}/bin/busybox";
    # The install test loads dm-crypt and btrfs from this kernel's modules.
    BIFROST_KERNEL_MODULES = "${guest.linuxPackages.kernel}/lib/modules";
    # Secure Boot (tests/tests/e2e/sb_boot.rs, sb_cli.rs).
    BIFROST_OVMF_SECBOOT_CODE = ovmfSecure.firmware;
    BIFROST_OVMF_SETUP_VARS = ovmfSecure.variables;
    BIFROST_OVMF_MS_VARS = "${sbStandin}/OVMF_VARS_4M.ms.fd";
    BIFROST_OVMF_SNAKEOIL_VARS = "${sbStandin}/OVMF_VARS_4M.snakeoil.fd";
    BIFROST_SNAKEOIL_KEY = "${sbStandin}/PkKek-1-snakeoil.key";
    BIFROST_SNAKEOIL_CERT = "${sbStandin}/PkKek-1-snakeoil.pem";
    BIFROST_SHIM = "${sbStandin}/shim/shimx64.efi.signed";
    # What tests/nix/sb-standin.sh signs (tests/tests/e2e/sb_standin.rs).
    BIFROST_SHIM_UNSIGNED_DIR = "${shim}/share/shim";
    # TPM (tests/tests/e2e/tpm_qemu.rs): what runs in the guest is x86_64; the
    # token plugin folder is the one nixpkgs' cryptsetup is built to search
    # (pkgs/by-name/cr/cryptsetup: `${systemd}/lib/cryptsetup`).
    BIFROST_SYSTEMD_CRYPTSETUP = "${systemd}/lib/systemd/systemd-cryptsetup";
    BIFROST_CRYPTSETUP_TPM2_TOKEN = "${systemd}/lib/cryptsetup/libcryptsetup-token-systemd-tpm2.so";
    BIFROST_TSS2_LIB_DIR = "${guest.tpm2-tss}/lib";
    # The module and flake evaluation tests: this flake's own nixpkgs lib.
    BIFROST_NIXPKGS_LIB = nixpkgsLib;
    RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
    passthru = {inherit commands files;};
    shellHook = ''
      echo "bifrost dev shell: run tests/run.sh for the whole test suite" >&2
    '';
  }
