//! Checks of meaning beyond what the types enforce.

use super::{HostSettings, Problem};

/// Every problem found in `settings`; empty when the settings are usable.
pub fn validate(settings: &HostSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    if settings.host_name.is_empty() {
        problems.push(Problem {
            path: "hostName".into(),
            message: "must not be empty; use letters, digits and '-'".into(),
        });
    }
    problems
}
