use super::*;

pub(super) fn req(format: Format) -> Request {
    Request {
        format,
        flake: "github:bifrost-nix/bifrost".into(),
        host: Some("surface-pro-8".into()),
        out: "/mnt/kinoite/@images/a_nixos_host".into(),
        keep: 1,
        builders: None,
        substituters: vec![],
        trusted_keys: vec![],
        nix_args: vec![],
    }
}

#[test]
fn formats_map_to_nixpkgs_image_builders() {
    let attrs: Vec<_> = Format::ALL
        .iter()
        .map(|f| (f.name(), f.attr(), f.artifact_name()))
        .collect();
    assert_eq!(
        attrs,
        [
            ("raw", "images.raw-efi", "nixos.raw"),
            ("iso", "images.iso-installer", "nixos.iso"),
            ("qcow", "images.qemu-efi", "nixos.qcow2"),
            ("vm", "vm", "nixos-vm"),
        ]
    );
    assert_eq!("qcow".parse::<Format>(), Ok(Format::Qcow));
    assert!("qcow2"
        .parse::<Format>()
        .unwrap_err()
        .contains("raw, iso, qcow or vm"));
}

#[test]
fn dry_run_plan_with_cache_and_builders() {
    let mut r = req(Format::Iso);
    r.builders = Some("ssh://builder x86_64-linux - 8".into());
    r.substituters = vec!["https://cache.example.org".into()];
    r.trusted_keys = vec!["cache.example.org-1:AAAA".into()];
    r.nix_args = vec![
        "--override-input".into(),
        "nixpkgs".into(),
        "path:/src/nixpkgs".into(),
        "-j4".into(),
    ];
    let plan = Plan::new(&r, "surface-pro-8").unwrap();
    assert_eq!(
        plan.eval_args,
        ["--override-input", "nixpkgs", "path:/src/nixpkgs"]
    );
    insta::assert_snapshot!(plan.render());
}

#[test]
fn plan_refusals_name_the_flag() {
    let r = req(Format::Raw);
    assert!(Plan::new(&r, "bad host")
        .unwrap_err()
        .to_string()
        .starts_with("--host:"));
    let mut k = req(Format::Raw);
    k.keep = 1000;
    assert!(Plan::new(&k, "h")
        .unwrap_err()
        .to_string()
        .starts_with("--keep:"));
    let mut t = req(Format::Raw);
    t.trusted_keys = vec!["k:1".into()];
    assert!(Plan::new(&t, "h")
        .unwrap_err()
        .to_string()
        .starts_with("--trusted-key"));
}

#[test]
fn exit_codes_follow_nix() {
    let e = BuildError::NixFailed {
        code: Some(100),
        errors: vec![],
        failures: vec![],
    };
    assert_eq!(e.exit_code(), 100);
    assert_eq!(BuildError::Interrupted("/o".into()).exit_code(), 130);
}

#[test]
fn failure_message_has_errors_and_log_tail() {
    let s = render_failure(
        &["error: builder for '/nix/store/x-a.drv' failed with exit code 3".into()],
        &[("/nix/store/x-a.drv".into(), vec!["mkfs failed".into()])],
    );
    insta::assert_snapshot!(s);
}

#[test]
fn build_json_and_flake_metadata() {
    let out = r#"[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/b-x"}}]"#;
    assert_eq!(parse_build_json(out).as_deref(), Some("/nix/store/b-x"));
    assert_eq!(parse_build_json("[]"), None);

    let git_clean: serde_json::Value = serde_json::from_str(
        r#"{"locked":{"type":"git","rev":"abc"},"revision":"abc","url":"git+file:///src?rev=abc","lastModified":5,
            "locks":{"root":"root","version":7,"nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs_2"}},
            "nixpkgs_2":{"locked":{"rev":"5880666fd9eb563038431edb35c2d0aa595884e6"}}}}}"#,
    )
    .unwrap();
    let (info, nixpkgs) = parse_flake_metadata(".", &git_clean);
    assert_eq!(info.dirty, Some(false));
    assert_eq!(info.revision.as_deref(), Some("abc"));
    assert_eq!(
        nixpkgs.as_deref(),
        Some("5880666fd9eb563038431edb35c2d0aa595884e6")
    );

    let git_dirty_28: serde_json::Value =
        serde_json::from_str(r#"{"locked":{"type":"git"},"url":"git+file:///src"}"#).unwrap();
    assert_eq!(parse_flake_metadata(".", &git_dirty_28).0.dirty, Some(true));
    let git_dirty_new: serde_json::Value = serde_json::from_str(
        r#"{"locked":{"type":"git"},"dirtyRevision":"abc-dirty","url":"git+file:///src"}"#,
    )
    .unwrap();
    assert_eq!(
        parse_flake_metadata(".", &git_dirty_new).0.dirty,
        Some(true)
    );
    let path: serde_json::Value = serde_json::from_str(r#"{"locked":{"type":"path"}}"#).unwrap();
    let (info, nixpkgs) = parse_flake_metadata(".", &path);
    assert_eq!((info.dirty, nixpkgs), (None, None));
}

#[test]
fn app_environment_fills_what_nix_cannot_tell() {
    let path = manifest::FlakeInfo {
        url: "path:/nix/store/x-source".into(),
        ..Default::default()
    };
    let i = with_app_env(path.clone(), Some("abc".into()), Some("0".into()));
    assert_eq!((i.revision.as_deref(), i.dirty), (Some("abc"), Some(false)));
    let i = with_app_env(path, Some(String::new()), Some("1".into()));
    assert_eq!((i.revision, i.dirty), (None, Some(true)));
    let git = manifest::FlakeInfo {
        revision: Some("real".into()),
        dirty: Some(false),
        ..Default::default()
    };
    let i = with_app_env(git, Some("other".into()), Some("1".into()));
    assert_eq!(
        (i.revision.as_deref(), i.dirty),
        (Some("real"), Some(false))
    );
}

#[test]
fn a_word_starting_with_hash_is_quoted() {
    // Unquoted, the shell would read `#x` as the start of a comment.
    assert_eq!(
        command::shell_line("nix", &["#x".into(), "a#b".into()]),
        "nix '#x' a#b"
    );
    assert_eq!(
        crate::install::plan::command_line(&["echo".into(), "#x".into()]),
        "echo '#x'"
    );
}

#[test]
fn an_empty_or_attribute_flake_never_reaches_nix() {
    for flake in ["", ".#testhost"] {
        let mut r = req(Format::Raw);
        r.flake = flake.into();
        let e = resolve_host(&r).unwrap_err();
        assert!(matches!(e, BuildError::BadFlake(_)), "{flake:?}: {e}");
        let e = Plan::new(&r, "testhost").unwrap_err();
        assert!(matches!(e, BuildError::BadFlake(_)), "{flake:?}: {e}");
    }
}
