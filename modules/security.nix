# bifrost security: nftables firewall, audit logging, Secure Boot switch
# (the signing itself happens in boot.nix's install hook, docs/secure-boot.md).
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  sec = cfg.settings.security;
in {
  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !sec.secureBoot.enable || sec.secureBoot.keysPath != null;
        message = "bifrost.settings.security.secureBoot.enable is true but keysPath is not set: set security.secureBoot.keysPath to the folder holding mok.key and mok.crt (shim route) or db.key and db.crt (own keys), as `bifrost sb keys` makes them, or turn Secure Boot off.";
      }
      {
        # Without Fedora's shim on the ESP the shim route needs one given.
        assertion = !(sec.secureBoot.enable && sec.secureBoot.route == "shim" && sec.secureBoot.shim == null && (cfg.settings.dualBoot.kinoite or null) == null);
        message = "bifrost.settings.security.secureBoot.route is \"shim\" but there is no Kinoite side whose shim (EFI/fedora/shimx64.efi) could be used: set security.secureBoot.shim to a Microsoft-signed shimx64.efi, or use route \"own-keys\".";
      }
    ];

    networking.firewall = {
      inherit (sec.firewall) enable;
      allowedTCPPorts = sec.firewall.allowedTcpPorts;
      allowedUDPPorts = sec.firewall.allowedUdpPorts;
    };
    networking.nftables.enable = sec.firewall.enable;

    # auditd writes the log; security.audit loads the kernel's audit rules.
    security.auditd.enable = sec.audit;
    security.audit.enable = sec.audit;
  };
}
