//! Steps that are small POSIX scripts (the shared subvolume, the flake
//! copy): `sh -c SCRIPT sh ARG…`, the arguments as positional parameters so
//! no path is ever pasted into the script text.

/// The command line running `script` with `args` as `$1`, `$2`, ….
pub fn argv(script: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// Running a script for real with stand-ins for the programs it calls.
#[cfg(test)]
pub mod stubs {
    use camino::{Utf8Path, Utf8PathBuf};
    use std::os::unix::fs::PermissionsExt;

    /// A folder of stand-in programs put first on `PATH`, each appending
    /// `NAME ARGS` to a shared log before its own body runs.
    pub struct Stubs {
        bin: Utf8PathBuf,
        pub log: Utf8PathBuf,
    }

    impl Stubs {
        /// Stubs `(name, body)` under `root/bin`, logging to `root/log`.
        pub fn new(root: &Utf8Path, programs: &[(&str, &str)]) -> Stubs {
            let bin = root.join("bin");
            let log = root.join("log");
            std::fs::create_dir_all(&bin).unwrap();
            for (name, body) in programs {
                let p = bin.join(name);
                std::fs::write(
                    &p,
                    format!("#!/bin/sh\necho \"{name} $*\" >> {log}\n{body}\n"),
                )
                .unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            Stubs { bin, log }
        }

        /// Run `argv` with the stubs first on `PATH`.
        pub fn run(&self, argv: &[String]) -> std::process::ExitStatus {
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env(
                    "PATH",
                    format!("{}:{}", self.bin, std::env::var("PATH").unwrap_or_default()),
                )
                .status()
                .unwrap()
        }

        pub fn logged(&self) -> String {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_are_positional_parameters() {
        let a = super::argv("printf '%s|' \"$@\"", &["a b", "$(x)"]);
        let out = std::process::Command::new(&a[0])
            .args(&a[1..])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$(x)|");
    }
}
