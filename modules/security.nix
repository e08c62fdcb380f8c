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
  # Secure Boot's keysPath and shim rules are bifrost's, checked by
  # check.nix (`bifrost check`).
  config = lib.mkIf cfg.enable {
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
