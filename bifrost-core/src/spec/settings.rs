//! Host settings that passed validation: the only form the rest of the core
//! accepts, so a rule is checked once, when settings are loaded or built,
//! and never again by the code that uses them.

use super::{HostSettings, Problem};
use serde::Serialize;

/// Host settings that [`super::validate`] found no problem in.
///
/// Built only by [`super::load_file`], [`super::from_slice`] and
/// [`validated`]; read through `Deref`. There is no `DerefMut`: a change
/// goes through [`Settings::into_inner`] and [`validated`] again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Settings(HostSettings);

impl Settings {
    /// The plain settings, to change them (then [`validated`] again).
    pub fn into_inner(self) -> HostSettings {
        self.0
    }
}

impl std::ops::Deref for Settings {
    type Target = HostSettings;

    fn deref(&self) -> &HostSettings {
        &self.0
    }
}

impl AsRef<HostSettings> for Settings {
    fn as_ref(&self) -> &HostSettings {
        &self.0
    }
}

/// `settings` as [`Settings`], or every problem [`super::validate`] finds
/// in them (for code that builds settings rather than reading a file, such
/// as `hardware::detect`).
pub fn validated(settings: HostSettings) -> Result<Settings, Vec<Problem>> {
    let problems = super::validate(&settings);
    if problems.is_empty() {
        Ok(Settings(settings))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface() -> HostSettings {
        serde_json::from_str(include_str!("../../../hosts/surface-pro-8/host.json")).unwrap()
    }

    #[test]
    fn valid_settings_pass_and_serialize_as_themselves() {
        let plain = surface();
        let s = validated(plain.clone()).unwrap();
        assert_eq!(*s, plain);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::to_value(&plain).unwrap()
        );
        assert_eq!(s.into_inner(), plain);
    }

    #[test]
    fn invalid_settings_are_refused_with_every_problem() {
        let mut plain = surface();
        plain.host_name = "bad_name".into();
        plain.storage.luks.argon2id.iterations = 1;
        let problems = validated(plain).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["hostName", "storage.luks.argon2id.iterations"]);
    }
}
