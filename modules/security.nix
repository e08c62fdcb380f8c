# bifrost security: nftables firewall, audit logging, Secure Boot switch.
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
        message = "bifrost.settings.security.secureBoot.enable is true but keysPath is not set: set security.secureBoot.keysPath to the folder holding db.key and db.crt, or turn Secure Boot off.";
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
