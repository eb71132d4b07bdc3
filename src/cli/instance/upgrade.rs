//! `kars instance upgrade`: move a running instance to a new version of its spec, after
//! showing what changes and when it takes effect.

use std::fmt::Write as _;
use std::path::PathBuf;

use kars::spec::change::{Change, compare};
use kars::workflow::driver::{SpecText, UpgradeRequest};
use kars::workflow::{UpgradePlan, UpgradeWhen};

use super::{
    ActorArg, Done, Failure, Now, Target, driver_failure, load_spec, open, read_text, refused, render_report, who_acts,
};

/// Arguments of `kars instance upgrade`.
#[derive(Debug, clap::Args)]
pub(super) struct UpgradeArgs {
    #[command(flatten)]
    target: Target,
    /// The new spec file.
    file: PathBuf,
    /// Show what changes and when it would take effect; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// When it takes effect (default: now for cosmetic changes, the next cycle otherwise).
    #[arg(long, value_enum, value_name = "WHEN")]
    when: Option<WhenArg>,
    #[command(flatten)]
    actor: ActorArg,
    #[command(flatten)]
    now: Now,
}

/// `--when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WhenArg {
    /// In the middle of the running cycle (refused, with the reasons, when that would
    /// invalidate what the cycle resolved).
    Now,
    /// When the next cycle starts; the running one finishes under its spec.
    NextCycle,
}

pub(super) fn upgrade(args: &UpgradeArgs) -> Result<Done, Failure> {
    let (text, origin) = read_text(&args.file)?;
    let (new_spec, program) = load_spec(&text, &origin)?;
    let mut session = open(&args.target, &args.now, None, super::Access::Write)?;
    let plan = session.driver.plan_upgrade(&program);
    let when = match args.when {
        Some(WhenArg::Now) => UpgradeWhen::Now,
        Some(WhenArg::NextCycle) => UpgradeWhen::NextCycle,
        None => plan.default_when(),
    };
    let mut out = describe(&plan, &compare(session.spec.spec(), new_spec.spec()), when);
    if args.dry_run {
        out.push_str("dry run: nothing was written\n");
        return Ok(Done { out, warnings: Vec::new(), committed: false });
    }
    let actor = who_acts(&session, args.actor.actor.as_deref())?;
    let managers = session.driver.program().team_managed_by().to_vec();
    if !actor.holds_any(&managers) {
        let roles: Vec<String> = managers.iter().map(|r| format!("`{r}`")).collect();
        return Err(refused(format!(
            "`{}` may not upgrade instance `{}`: upgrades are for the roles the spec's `team_managed_by` names ({})",
            actor.name(),
            args.target.id,
            if roles.is_empty() { "none".to_owned() } else { roles.join(", ") }
        )));
    }
    let request = UpgradeRequest { spec: SpecText { origin, text }, by: actor.name().to_string(), when: Some(when) };
    let report = session.driver.upgrade(&program, &request).map_err(driver_failure)?;
    session.spec = new_spec;
    let warnings = render_report(&mut session, &report, &mut out);
    Ok(Done { out, warnings, committed: report.committed() })
}

/// The plan in words: what changes, whether it is cosmetic, when it takes effect.
fn describe(plan: &UpgradePlan, changes: &[Change], when: UpgradeWhen) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "upgrade from spec `{}` to spec `{}`", plan.from, plan.to);
    if changes.is_empty() {
        out.push_str("no change\n");
    }
    for change in changes {
        let kind = if change.is_behavioural() { "behaviour" } else { "cosmetic " };
        let _ = writeln!(out, "  {kind}  {change}");
    }
    let class =
        if plan.cosmetic { "cosmetic: applies at once, nothing the instance does changes" } else { "behavioural" };
    let _ = writeln!(out, "kind:   {class}");
    if plan.blockers.is_empty() {
        out.push_str("now:    possible (the running cycle stays valid under the new spec)\n");
    } else {
        out.push_str("now:    not possible:\n");
        for b in &plan.blockers {
            let _ = writeln!(out, "          - {b}");
        }
    }
    let _ = writeln!(out, "takes effect: {when}");
    out
}
