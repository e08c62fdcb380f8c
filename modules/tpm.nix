# bifrost TPM unlock: with storage.luks.unlock.method "tpm2" or "tpm2-pin",
# the initrd runs systemd, whose systemd-cryptsetup reads the TPM2 token that
# `bifrost tpm enroll` (systemd-cryptenroll) wrote into the LUKS2 header. When
# the TPM refuses (PCR 7 changed: Secure Boot keys, firmware, dbx update), it
# asks for the passphrase or the recovery key as before: the passphrase slot
# is never removed.
#
# Options set, as declared in nixpkgs:
# - boot.initrd.systemd.enable: nixos/modules/system/boot/systemd/initrd.nix
#   (the scripted stage 1 has no TPM2 support).
# - boot.initrd.systemd.tpm2.enable: nixos/modules/system/boot/systemd/tpm2.nix
#   (defaults to true when systemd is built with tpm2-tss; set so a smaller
#   systemd package cannot silently drop it). It adds the tpm-tis/tpm-crb
#   modules and tpm2-tss to the initrd; luksroot.nix then adds
#   libcryptsetup-token-systemd-tpm2.so.
# - boot.initrd.luks.devices.<name>.crypttabExtraOpts:
#   nixos/modules/system/boot/luksroot.nix ("Only used with systemd stage 1";
#   appended to the initrd's /etc/crypttab line). `fallbackToPassword` must
#   stay unset: luksroot.nix asserts it is implied by systemd stage 1.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  s = cfg.settings;
  unlock = s.storage.luks.unlock;
  tpm = unlock.method != "passphrase";
in {
  config = lib.mkIf (cfg.enable && tpm) {
    # An empty tpm2Pcrs with a TPM method is refused by bifrost's rules
    # (check.nix runs `bifrost check`). The warning stays here: a check
    # that passes prints nothing where `nixos-rebuild` shows it.
    warnings = lib.optional (builtins.elem 7 unlock.tpm2Pcrs && !s.security.secureBoot.enable) "bifrost.settings.security.secureBoot.enable is false while storage.luks.unlock.method is \"${unlock.method}\" bound to PCR 7: without Secure Boot, PCR 7 stays the same when the boot chain changes, so the TPM releases the key to any kernel or initrd. Turn Secure Boot on and run `bifrost tpm enroll` again, or use \"tpm2-pin\".";

    boot.initrd.systemd.enable = true;
    boot.initrd.systemd.tpm2.enable = true;
    # The PIN, when enrolled with one, is recorded in the token itself.
    boot.initrd.luks.devices.${s.storage.luks.name}.crypttabExtraOpts = ["tpm2-device=auto"];
  };
}
