# bifrost users: the people of `bifrost.settings.users` as NixOS accounts.
#
# Passwords never pass through Nix: `bifrost install` asks for each one and
# writes only its crypt(5) hash to `<passwordDir>/<name>` on the target's own
# root (mode 0600, folder 0700), which `hashedPasswordFile` reads at every
# activation. Users are immutable (`users.mutableUsers = false`), so the
# declaration is the truth and nixpkgs' own lockout assertion (no wheel user
# with a password or key) guards the result; root stays locked and
# administrators use sudo.
{
  config,
  lib,
  ...
}: let
  cfg = config.bifrost;
  people = cfg.settings.users;
  hasKeys = lib.any (u: u.sshAuthorizedKeys != []) people;
  st = cfg.settings.storage;
  hasShared = lib.any (v: v.owner == "shared") st.subvolumes;
in {
  options.bifrost.users.passwordDir = lib.mkOption {
    type = lib.types.str;
    default = "/var/lib/bifrost/passwords";
    defaultText = lib.literalExpression ''"/var/lib/bifrost/passwords"'';
    example = "/persist/passwords";
    description = ''
      Folder on the installed system holding one file per user with the
      crypt(5) hash of their password (what `bifrost install` writes; the
      file name is the user name). Read by `users.users.<name>.hashedPasswordFile`
      at every activation; never in the Nix store. Change a password with
      `mkpasswd -m sha-512 | sudo tee <passwordDir>/<name>` and a rebuild.
    '';
  };

  # At least one administrator: bifrost's rule, checked by check.nix
  # (`bifrost check`); nixpkgs' lockout assertion guards the result too.
  config = lib.mkIf cfg.enable {
    users.mutableUsers = lib.mkDefault false;

    # A private group per person with the uid as gid, as Fedora makes them:
    # files on the shared subvolume keep owner and group on both systems.
    users.groups = lib.listToAttrs (map (u: lib.nameValuePair u.name {gid = u.uid;}) people);

    users.users = lib.listToAttrs (map (u:
      lib.nameValuePair u.name {
        isNormalUser = true;
        inherit (u) uid;
        group = u.name;
        # Everyone shares the data of a shared subvolume (storage.nix declares
        # the group with Kinoite's gid; install makes its top folder setgid).
        extraGroups = u.groups ++ lib.optional u.admin "wheel" ++ lib.optional hasShared st.sharedGroup.name;
        hashedPasswordFile = "${cfg.users.passwordDir}/${u.name}";
        openssh.authorizedKeys.keys = u.sshAuthorizedKeys;
      })
    people);

    # sudo is nixpkgs' default; wheel members use it with their own password.
    security.sudo.enable = lib.mkDefault true;
    security.sudo.wheelNeedsPassword = lib.mkDefault true;

    # Authorized keys are only read by a running sshd.
    services.openssh.enable = lib.mkIf hasKeys (lib.mkDefault true);
  };
}
