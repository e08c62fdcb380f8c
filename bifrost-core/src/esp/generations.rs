//! NixOS generations from a profiles folder (`system-N-link`) and their
//! bootspec documents (`boot.json`, RFC 0125).

use super::EspError;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// What boots one system (a generation or one of its specialisations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootTarget {
    pub label: String,
    pub kernel: Utf8PathBuf,
    pub initrd: Option<Utf8PathBuf>,
    pub toplevel: Utf8PathBuf,
    pub kernel_params: Vec<String>,
}

impl BootTarget {
    /// The kernel command line NixOS boots with: `init=<toplevel>/init`, then the bootspec's parameters.
    pub fn cmdline(&self) -> String {
        let mut parts = vec![format!("init={}", self.toplevel.join("init"))];
        parts.extend(self.kernel_params.iter().cloned());
        parts.join(" ")
    }
}

/// One NixOS generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    pub number: u64,
    pub link: Utf8PathBuf,
    pub boot: BootTarget,
    /// Specialisations by name, sorted.
    pub specialisations: Vec<(String, BootTarget)>,
}

impl Generation {
    /// What the generation boots: its own target, then its specialisations'.
    pub fn targets(&self) -> impl Iterator<Item = &BootTarget> {
        std::iter::once(&self.boot).chain(self.specialisations.iter().map(|(_, b)| b))
    }
}

fn number_of(name: &str) -> Option<u64> {
    name.strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()
}

/// Generations read, and the old ones left out because they are broken.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// Newest first.
    pub generations: Vec<Generation>,
    /// One line per skipped generation: what is wrong with it.
    pub skipped: Vec<String>,
}

/// Read the newest `limit` generations (all when `None`) of `profiles`, newest first.
///
/// An old generation that cannot be read (a dangling link, a missing or
/// malformed boot.json, a kernel gone) is skipped with a warning and the
/// next older one takes its place, as systemd-boot and lanzaboote do: one bad
/// old generation must not keep new ones out of the menu. The newest
/// generation is never skipped: it is what the user just built.
///
/// With `root`, the system lives under that folder (an installer's `/mnt`):
/// absolute links and the bootspec's kernel and initrd are read below it,
/// while the paths the booted system sees (`init=`) stay as they are.
pub fn read(
    profiles: &Utf8Path,
    limit: Option<u32>,
    root: Option<&Utf8Path>,
) -> Result<Read, EspError> {
    let mut links: Vec<(u64, Utf8PathBuf)> = vec![];
    let entries = profiles.read_dir_utf8().map_err(|source| {
        EspError::Io(crate::fsutil::IoError::new(
            profiles.to_string(),
            "read profiles folder",
            source,
        ))
    })?;
    for ent in entries {
        let ent = ent.map_err(|source| {
            EspError::Io(crate::fsutil::IoError::new(
                profiles.to_string(),
                "read profiles folder",
                source,
            ))
        })?;
        if let Some(n) = number_of(ent.file_name()) {
            links.push((n, ent.path().to_owned()));
        }
    }
    if links.is_empty() {
        return Err(EspError::NoGenerations(profiles.to_string()));
    }
    links.sort_by_key(|l| std::cmp::Reverse(l.0));
    let want = limit.map_or(usize::MAX, |l| l as usize);
    let mut out = Read::default();
    for (i, (n, link)) in links.into_iter().enumerate() {
        if out.generations.len() >= want {
            break;
        }
        match read_one(n, &link, root) {
            Ok(g) => out.generations.push(g),
            Err(e @ EspError::Generation { .. }) if i > 0 => {
                out.skipped.push(format!("skipped old generation {n}: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `path` as seen from this process: below `root` when one is given.
fn under(root: Option<&Utf8Path>, path: &Utf8Path) -> Utf8PathBuf {
    match root {
        Some(r) if path.is_absolute() => r.join(path.strip_prefix("/").unwrap_or(path)),
        _ => path.to_owned(),
    }
}

/// Follow `link` through symlinks the way the system under `root` would.
fn resolve(link: &Utf8Path, root: Option<&Utf8Path>) -> Utf8PathBuf {
    let mut p = link.to_owned();
    if root.is_none() {
        return p;
    }
    // Profiles chain a few links at most (system -> system-N-link -> store).
    for _ in 0..16 {
        let Ok(t) = p.read_link_utf8() else { break };
        p = if t.is_absolute() {
            under(root, &t)
        } else {
            p.parent().unwrap_or(Utf8Path::new("")).join(t)
        };
    }
    p
}

fn read_one(number: u64, link: &Utf8Path, root: Option<&Utf8Path>) -> Result<Generation, EspError> {
    let bad = |msg: String| EspError::Generation {
        path: link.to_string(),
        msg,
    };
    let resolved = resolve(link, root);
    if std::fs::metadata(&resolved).is_err() {
        let target = std::fs::read_link(link)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(bad(format!(
            "is a dangling link (to {target}); remove the generation (`nix-env -p … --delete-generations {number}`) or restore its store path"
        )));
    }
    let json_path = resolved.join(bootspec::JSON_FILENAME);
    let bytes = super::bootjson::read(&json_path).map_err(bad)?;
    let doc = super::bootjson::parse(&bytes).map_err(bad)?;
    let v1 = bootspec::v1::GenerationV1::try_from(doc.generation)
        .map_err(|e| bad(format!("boot.json: unsupported bootspec version: {e}")))?;
    let boot = target(&v1.bootspec, link, "", root)?;
    let mut specialisations = vec![];
    for (name, s) in &v1.specialisations {
        let b = target(&s.generation.bootspec, link, &name.0, root)?;
        specialisations.push((name.0.clone(), b));
    }
    specialisations.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Generation {
        number,
        link: link.to_owned(),
        boot,
        specialisations,
    })
}

fn target(
    b: &bootspec::v1::BootSpecV1,
    link: &Utf8Path,
    spec: &str,
    root: Option<&Utf8Path>,
) -> Result<BootTarget, EspError> {
    let what = if spec.is_empty() {
        "boot.json".to_string()
    } else {
        format!("boot.json specialisation {spec:?}")
    };
    let bad = |msg: String| EspError::Generation {
        path: link.to_string(),
        msg: format!("{what}: {msg}"),
    };
    let utf8 = |p: &std::path::Path, field: &str| {
        Utf8PathBuf::from_path_buf(p.to_path_buf())
            .map_err(|_| bad(format!("{field} path is not UTF-8")))
    };
    for (field, v) in [("label", b.label.as_str())]
        .into_iter()
        .chain(b.kernel_params.iter().map(|p| ("kernelParams", p.as_str())))
    {
        if v.contains(['\n', '\r']) {
            return Err(bad(format!(
                "{field} {v:?} contains a newline, which rEFInd cannot show"
            )));
        }
        if v.contains(char::is_control) {
            return Err(bad(format!(
                "{field} {v:?} contains a control character, which would reach refind.conf raw; remove it"
            )));
        }
    }
    if b.label.contains('"') {
        return Err(bad(format!(
            "label {:?} contains a double quote, which a rEFInd title cannot hold; change system.nixos.label",
            b.label
        )));
    }
    if spec.contains('"') || spec.contains(char::is_control) {
        return Err(bad(
            "specialisation name contains a quote, newline or control character".into(),
        ));
    }
    // Kernel and initrd are read from here; their store names (and so their
    // names on the ESP) are the same with or without `root`.
    let store_path = |p: &std::path::Path, field: &str| -> Result<Utf8PathBuf, EspError> {
        let p = utf8(p, field)?;
        crate::confine::store_file(&p).map_err(|e| bad(format!("{field}: {e}")))?;
        let seen = under(root, &p);
        if let (Some(r), true) = (root, seen.exists()) {
            crate::confine::inside(r, &seen).map_err(|e| bad(format!("{field}: {e}")))?;
        }
        Ok(seen)
    };
    let kernel = store_path(&b.kernel, "kernel")?;
    let initrd = b
        .initrd
        .as_deref()
        .map(|p| store_path(p, "initrd"))
        .transpose()?;
    for (field, p) in
        std::iter::once(("kernel", &kernel)).chain(initrd.iter().map(|p| ("initrd", p)))
    {
        if !p.is_file() {
            return Err(bad(format!("{field} {p} does not exist")));
        }
    }
    Ok(BootTarget {
        label: b.label.clone(),
        kernel,
        initrd,
        toplevel: utf8(&b.toplevel.0, "toplevel")?,
        kernel_params: b.kernel_params.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profiles folder with one generation whose bootspec has `kernel`,
    /// `label` and `params`; returns the profiles folder.
    /// With `in_root`, links and the toplevel are written as the system
    /// under `base` sees them (absolute from `base`).
    fn generation_in(
        base: &Utf8Path,
        in_root: bool,
        kernel: &str,
        label: &str,
        params: &[&str],
    ) -> Utf8PathBuf {
        let rel = "nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system";
        std::fs::create_dir_all(base.join(rel)).unwrap();
        let top = if in_root {
            Utf8PathBuf::from(format!("/{rel}"))
        } else {
            base.join(rel)
        };
        let doc = serde_json::json!({"org.nixos.bootspec.v1": {
            "label": label, "kernel": kernel, "kernelParams": params,
            "init": top.join("init"), "system": "x86_64-linux", "toplevel": top,
        }});
        std::fs::write(base.join(rel).join("boot.json"), doc.to_string()).unwrap();
        let profiles = base.join("profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        let _ = std::fs::remove_file(profiles.join("system-1-link"));
        std::os::unix::fs::symlink(&top, profiles.join("system-1-link")).unwrap();
        profiles
    }

    fn generation(base: &Utf8Path, kernel: &str, label: &str, params: &[&str]) -> Utf8PathBuf {
        generation_in(base, false, kernel, label, params)
    }

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
        (d, p)
    }

    #[test]
    fn kernel_paths_with_dotdot_are_refused() {
        let (_d, base) = tmp();
        let k = base.join("nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-linux");
        std::fs::create_dir_all(&k).unwrap();
        std::fs::write(k.join("bzImage"), b"kernel").unwrap();
        std::fs::write(base.join("secret"), b"not a kernel").unwrap();
        let good = k.join("bzImage");
        let profiles = generation(&base, good.as_str(), "NixOS", &[]);
        assert_eq!(
            read(&profiles, None, None).unwrap().generations[0]
                .boot
                .kernel,
            good
        );
        // `..` climbing out of the store to a file that exists.
        let climb = format!("{k}/../../../secret");
        let profiles = generation(&base, &climb, "NixOS", &[]);
        let e = read(&profiles, None, None).unwrap_err().to_string();
        assert!(e.contains("`..`"), "{e}");
        // The same through --root: `..` would climb out of the root.
        let (_r, outer) = tmp();
        let root = outer.join("mnt");
        std::fs::create_dir_all(root.join("nix/store/x-linux")).unwrap();
        std::fs::write(outer.join("host-secret"), b"host").unwrap();
        let profiles = generation_in(
            &root,
            true,
            "/nix/store/x-linux/../../../../host-secret",
            "NixOS",
            &[],
        );
        let e = read(&profiles, None, Some(&root)).unwrap_err().to_string();
        assert!(e.contains("`..`"), "{e}");
        // A link inside --root pointing out of it is refused too.
        std::fs::create_dir_all(root.join("nix/store/y-linux")).unwrap();
        std::os::unix::fs::symlink(
            outer.join("host-secret"),
            root.join("nix/store/y-linux/bzImage"),
        )
        .unwrap();
        let profiles = generation_in(&root, true, "/nix/store/y-linux/bzImage", "NixOS", &[]);
        let e = read(&profiles, None, Some(&root)).unwrap_err().to_string();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn control_characters_in_labels_and_params_are_refused() {
        let (_d, base) = tmp();
        let k = base.join("nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-linux/bzImage");
        std::fs::create_dir_all(k.parent().unwrap()).unwrap();
        std::fs::write(&k, b"kernel").unwrap();
        for (label, param) in [
            ("NixOS\u{1b}[2J", "quiet"),
            ("NixOS\ttab", "quiet"),
            ("NixOS", "quiet\u{0}x"),
            ("NixOS", "a\u{7f}"),
            ("NixOS", "a\u{85}b"),
        ] {
            let profiles = generation(&base, k.as_str(), label, &[param]);
            let e = read(&profiles, None, None).unwrap_err().to_string();
            assert!(e.contains("control character"), "{label:?} {param:?}: {e}");
        }
    }
}
