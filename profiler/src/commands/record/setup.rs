//! How `record` is set up from its arguments (its session, its escalation policy), and how a
//! finished window is stored and counted.

use std::{path::Path, time::Duration};

use super::escalation::{Base, Escalator, Policy};
use crate::commands::targets;
use crate::{
    alerts::{
        engine::Engine,
        rule::{Scope, rules_from_args},
        sink::Sink,
    },
    analyze::{triggers::Thresholds, victim::VictimSpec},
    cli::{RecordArgs, UnwindChoice},
    error::usage,
    metrics::Metrics,
    model::cmdline::Cmdlines,
    output::{
        HtmlReport,
        store::{Outage, Store},
        windows::WindowKind,
    },
    session::{Config, StatsCadence, Symbolization, WindowReport},
};

/// The recorder's `oom_score_adj`, as the systemd unit sets it: under memory pressure the OOM
/// killer takes the rogue, not the process that shows who it was.
const OOM_SCORE_ADJ: i32 = -900;
const OOM_SCORE_ADJ_FILE: &str = "/proc/self/oom_score_adj";

/// Lowers the process's `oom_score_adj` to [`OOM_SCORE_ADJ`] unless it is lower already (an
/// operator's choice is kept); says so when it cannot. `--on-alert` commands go back to 0.
pub fn shield_from_oom() {
    let current = std::fs::read_to_string(OOM_SCORE_ADJ_FILE)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok());
    if current.is_some_and(|adj| adj <= OOM_SCORE_ADJ) {
        return;
    }
    if let Err(err) = std::fs::write(OOM_SCORE_ADJ_FILE, OOM_SCORE_ADJ.to_string()) {
        eprintln!(
            "profiler: warning: could not lower the OOM score ({OOM_SCORE_ADJ_FILE}: {err}; it takes \
             CAP_SYS_RESOURCE): under memory pressure the recorder may be killed before the rogue"
        );
    }
}

/// How often alerts are evaluated, metrics refreshed and triggers judged.
pub const TICK: Duration = Duration::from_secs(1);

/// The `--victim`s: a pid must name a running process; a name or cgroup nothing runs under
/// yet is watched from when something does (a service restarting), and said.
pub fn victims(args: &RecordArgs) -> anyhow::Result<Vec<VictimSpec>> {
    let mut specs = Vec::new();
    for text in &args.victims {
        let spec = VictimSpec::parse(text);
        match &spec {
            VictimSpec::Pid(pid) => targets::check_pid(*pid, "--victim")?,
            VictimSpec::Name(name) if targets::victim_pids(&spec).is_empty() => eprintln!(
                "profiler: warning: --victim {name:?}: no process runs under that command name \
                 or cgroup yet; it is watched from when one does"
            ),
            VictimSpec::Name(_) => {}
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The alert rules `--alert` gives, or the default ones on the signals `--signals` runs; the
/// `--on-alert` command checked; `victim.` rules watch `victims`.
pub fn alert_engine(args: &RecordArgs, victims: &[VictimSpec]) -> anyhow::Result<Engine> {
    let mut rules = rules_from_args(&args.alerts).map_err(|err| usage(err.to_string()))?;
    if let Some(rule) = rules.iter().find(|rule| rule.scope() == Scope::Victim)
        && victims.is_empty()
    {
        return Err(usage(format!(
            "--alert {:?} watches the victim, but no --victim names one; add --victim \
             PID|NAME|CGROUP",
            rule.to_string()
        )));
    }
    if args.alerts.is_empty() {
        // A default rule on a signal left off would only warn: the syscall and net ones wait
        // for --signals to name their signals, and incidents cover those figures meanwhile.
        rules.retain(|rule| args.signals.contains(&rule.signal()));
    }
    if let Some(command) = &args.on_alert {
        Sink::check_hook(command).map_err(|err| usage(err.to_string()))?;
    }
    Ok(Engine::new(rules, std::process::id()).with_victims(victims.to_vec()))
}

/// Where windows go, kept to `--retention` and `--max-disk`.
pub fn store(args: &RecordArgs) -> anyhow::Result<Store> {
    let html = match args.html {
        true => HtmlReport::Write,
        false => HtmlReport::Skip,
    };
    let limits = (args.retention, args.max_disk);
    Store::new(&args.out, limits, html, args.exit_on_write_error)
}

/// Record's session: ticks a second, windows of `--window`, symbolized window by window.
pub fn config(args: &RecordArgs) -> Config {
    Config {
        frequency_hz: args.frequency,
        unwinding: args.unwind.unwinding(UnwindChoice::FramePointers),
        signals: args.signals.clone(),
        cmdlines: Cmdlines::redacted(args.redact),
        only_pids: Vec::new(),
        tick: TICK,
        window: Some(args.window),
        symbolization: Symbolization::KernelKept,
        stats: StatsCadence::Long,
        what_next: format!(
            "recording {} windows into {} (SIGINT or SIGTERM ends the current window and stops)",
            humantime::format_duration(args.window),
            args.out.display()
        ),
    }
}

/// The escalation `--escalate-*` ask for; none with `--no-escalate` or when the always-on
/// signals already hold every exact one.
pub fn escalator(args: &RecordArgs) -> Option<Escalator> {
    if args.no_escalate {
        return None;
    }
    let policy = Policy {
        thresholds: Thresholds {
            syscall_cores: args.escalate_syscall_cores,
            pressure: args.escalate_pressure,
            ..Thresholds::default()
        },
        length: args.escalate_for,
        cooldown: args.escalate_cooldown,
    };
    let base = Base {
        frequency_hz: args.frequency,
        cmdlines: Cmdlines::redacted(args.redact),
    };
    Escalator::new(policy, &args.signals, base)
}

/// What became of a window handed to [`put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    pub written: bool,
    /// A stretch of lost windows it starts or ends.
    pub outage: Option<Outage>,
}

/// Writes a window into its directory under `--out` and prunes old ones; a window that cannot
/// be written is lost and counted.
pub fn put(
    store: &mut Store,
    window: &WindowReport,
    kind: WindowKind,
    out: &Path,
    metrics: Option<&Metrics>,
) -> anyhow::Result<Put> {
    let WindowReport {
        report,
        usage,
        folded,
        started_at,
    } = window;
    let stored = store
        .put((*started_at, kind), (report, usage, folded))
        .map_err(|err| crate::error::output_write(err, out))?;
    let outage = stored.outage();
    let said = stored.say(out);
    let written = said.is_ok();
    match (metrics, said) {
        (Some(metrics), Ok(())) => metrics.window_written(),
        (Some(metrics), Err(because)) => metrics.window_failed(because),
        (None, _) => {}
    }
    Ok(Put { written, outage })
}
