//! `bifrost esp install` command lines for the tests, built in one place:
//! the ESP, the profiles and rEFInd that every install names, then what a
//! test adds.

use std::path::Path;

/// A `bifrost esp install` command line.
#[derive(Debug, Clone)]
pub struct EspInstall(Vec<String>);

fn utf8(p: &Path) -> String {
    p.to_str().expect("test paths are UTF-8").to_owned()
}

impl EspInstall {
    /// `bifrost esp install --esp ESP --profiles PROFILES --refind-efi REFIND`.
    pub fn new(esp: &Path, profiles: &Path, refind: &Path) -> Self {
        EspInstall(vec![
            "esp".into(),
            "install".into(),
            "--esp".into(),
            utf8(esp),
            "--profiles".into(),
            utf8(profiles),
            "--refind-efi".into(),
            utf8(refind),
        ])
    }

    /// The menu the QEMU boot tests read on the serial console: rEFInd as
    /// the removable loader, 30 s to choose, text only.
    pub fn boot_menu(self) -> Self {
        self.args(["--removable", "--timeout", "30", "--text-only"])
    }

    /// `extra` appended as given.
    pub fn args<S: AsRef<str>>(mut self, extra: impl IntoIterator<Item = S>) -> Self {
        self.0
            .extend(extra.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// `flag PATH`.
    pub fn path(self, flag: &str, path: &Path) -> Self {
        self.args([flag, &utf8(path)])
    }

    /// The arguments after `bifrost`.
    pub fn argv(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }

    /// Run it; returns (success, stdout, stderr).
    pub fn run(&self) -> (bool, String, String) {
        crate::fakenix::bifrost(&self.argv())
    }

    /// The command, to run another way (killed, timed, with another stdin).
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(crate::bifrost_bin());
        c.args(&self.0);
        c
    }
}
