//! `bifrost esp install` from end to end, as the command line gives it: the
//! settings and the flags resolved into choices ([`super::choices`]), the
//! ESP locked, planned, applied (or only planned, for a dry run), and
//! rEFInd registered in the firmware's boot menu when the choices say so.

use super::choices::{self, Flags};
use super::nvram::{self, Decision, Registered, Want};
use super::{lock, EspError, InstallOptions, Plan, Report};
use camino::Utf8PathBuf;

/// Everything `bifrost esp install` takes.
#[derive(Debug, Clone)]
pub struct Request {
    pub esp: Utf8PathBuf,
    pub profiles: Utf8PathBuf,
    pub root: Option<Utf8PathBuf>,
    pub refind_efi: Utf8PathBuf,
    /// Host settings file: the menu, signing and NVRAM follow it.
    pub settings: Option<Utf8PathBuf>,
    /// File of lines for refind.conf's global section.
    pub extra_config: Option<Utf8PathBuf>,
    pub force_removable: bool,
    /// The flags that override the settings.
    pub flags: Flags,
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// efivarfs folder.
    pub efivars: Utf8PathBuf,
}

/// What an install tells as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Another run holds the ESP's lock.
    Waiting(&'a str),
    /// An old generation left out of the menu.
    Warning(&'a str),
    /// A file copied, written or deleted.
    Step(&'a str),
}

/// How the firmware's boot entry was, or would be, handled.
#[derive(Debug, Clone)]
pub enum Nvram {
    Planned(Want, Decision),
    Registered(Want, Registered),
}

/// What an install did (or, in a dry run, would do).
#[derive(Debug)]
pub struct Done {
    pub plan: Plan,
    /// `None` for a dry run.
    pub report: Option<Report>,
    /// `None` when NVRAM is left alone; its failure comes after the
    /// install itself succeeded (the ESP boots through the fallback path or
    /// an existing entry), so it is told after the install's report.
    pub nvram: Option<Result<Nvram, EspError>>,
}

/// Resolve, lock, plan, apply and register.
pub fn install(r: Request, events: &mut dyn FnMut(Event)) -> Result<Done, EspError> {
    let extra_config = match &r.extra_config {
        Some(p) => std::fs::read_to_string(p).map_err(|err| EspError::ExtraConfig {
            path: p.to_string(),
            err,
        })?,
        None => String::new(),
    };
    let settings = r
        .settings
        .as_deref()
        .map(crate::spec::load_file)
        .transpose()?;
    let mut flags = r.flags;
    flags.root = r.root.clone();
    let c = choices::resolve(settings.as_ref(), flags)?;
    let entry_label = c.nvram.clone();
    let o = InstallOptions {
        esp: r.esp,
        profiles: r.profiles,
        root: r.root,
        refind_efi: r.refind_efi,
        force_removable: r.force_removable,
        extra_config,
        choices: c,
    };
    // Held until the install is done, so no other run plans against an ESP this one changes.
    let _lock = match r.dry_run {
        true => None,
        false => Some(lock::lock(&o.esp, &mut |m| events(Event::Waiting(m)))?),
    };
    let plan = super::plan(&o)?;
    for w in &plan.warnings {
        events(Event::Warning(w));
    }
    let loader = super::sign::boot_loader(&o);
    if r.dry_run {
        let nvram = entry_label.map(|label| {
            nvram::plan_for_esp(&r.efivars, &plan.esp, &loader, &label)
                .map(|(want, d)| Nvram::Planned(want, d))
                .map_err(EspError::from)
        });
        return Ok(Done {
            plan,
            report: None,
            nvram,
        });
    }
    let report = super::apply(&plan, &mut |line| events(Event::Step(line)))?;
    let nvram = entry_label.map(|label| {
        nvram::register_esp(&r.efivars, &plan.esp, &loader, &label)
            .map(|(want, reg)| Nvram::Registered(want, reg))
            .map_err(EspError::from)
    });
    Ok(Done {
        plan,
        report: Some(report),
        nvram,
    })
}
