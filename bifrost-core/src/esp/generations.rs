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
    let entries = profiles.read_dir_utf8().map_err(|source| EspError::Io {
        path: profiles.to_string(),
        op: "read profiles folder",
        source,
    })?;
    for ent in entries {
        let ent = ent.map_err(|source| EspError::Io {
            path: profiles.to_string(),
            op: "read profiles folder",
            source,
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
    }
    if b.label.contains('"') {
        return Err(bad(format!(
            "label {:?} contains a double quote, which a rEFInd title cannot hold; change system.nixos.label",
            b.label
        )));
    }
    if spec.contains(['"', '\n', '\r']) {
        return Err(bad("specialisation name contains a quote or newline".into()));
    }
    // Kernel and initrd are read from here; their store names (and so their
    // names on the ESP) are the same with or without `root`.
    let kernel = under(root, &utf8(&b.kernel, "kernel")?);
    let initrd = b
        .initrd
        .as_deref()
        .map(|p| utf8(p, "initrd").map(|p| under(root, &p)))
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
