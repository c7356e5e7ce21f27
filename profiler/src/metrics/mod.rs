//! Prometheus/OpenMetrics metrics of `profiler record`: the top processes per resource, the
//! applications, the host, and the profiler's own cost and losses, refreshed every tick.

mod server;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
pub use server::serve;

use crate::{
    alerts::event::AlertState,
    analyze::figures::{Figure, Tick},
    output::store::LostBecause,
    report::{App, AppKind, Cause, OwnCost, Process, Report, TriggerKind, Victim},
};

type GaugeF = Gauge<f64, AtomicU64>;
type CounterF = Counter<f64, AtomicU64>;

/// A process's series labels: pid, comm, app (its container, pod, unit or session when its
/// cgroups name one, else its cgroup path, else its command name: what an operator groups by)
/// with `app_kind` saying which, and `direction` for the gauges split by direction.
type ProcessLabels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    app: String,
    /// How its processes are grouped: report.json's app kinds (`comm`, `exe`, `cgroup`, `unit`,
    /// `container`, `pod`, `session`).
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VictimStateLabels {
    /// As `--victim` named it.
    victim: String,
    /// `on_cpu`, `runq_wait` or `blocked`.
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VictimCulpritLabels {
    victim: String,
    /// The command name of a process holding a CPU the victim waited for.
    culprit: String,
}

/// Culprit series kept per victim: past it, new culprits add to `culprit="other"`, so a host
/// of short-lived processes cannot grow the scrape without bound.
const CULPRIT_SERIES: usize = 20;
const OTHER_CULPRITS: &str = "other";

/// One per-process gauge: its name and help, and the figures it exports, one series each
/// (labelled by direction where there are two). The `top` processes of each gauge get its
/// series.
struct ProcessGauge {
    name: &'static str,
    help: &'static str,
    series: &'static [(Option<&'static str>, Figure)],
}

const PROCESS_GAUGES: [ProcessGauge; 6] = [
    ProcessGauge {
        name: "profiler_process_cpu_cores",
        help: "CPUs a process used over the last tick (1 = one core)",
        series: &[(None, Figure::CpuCores)],
    },
    ProcessGauge {
        name: "profiler_process_runq_wait_ratio",
        help: "Share of the last tick a process's threads waited for a CPU, summed over threads",
        series: &[(None, Figure::SchedRunqWaitRatio)],
    },
    ProcessGauge {
        name: "profiler_process_delay_caused_ratio",
        help: "CPUs' worth of other processes' run-queue waiting a process caused over the last tick",
        series: &[(None, Figure::SchedDelayCausedRatio)],
    },
    ProcessGauge {
        name: "profiler_process_syscalls_per_second",
        help: "Syscalls per second of a process over the last tick",
        series: &[(None, Figure::SyscallsRate)],
    },
    ProcessGauge {
        name: "profiler_process_io_bytes_per_second",
        help: "Block IO bytes per second charged to a process (direction read or write)",
        series: &[
            (Some("read"), Figure::IoReadBytesRate),
            (Some("write"), Figure::IoWriteBytesRate),
        ],
    },
    ProcessGauge {
        name: "profiler_process_net_bytes_per_second",
        help: "TCP/UDP socket bytes per second of a process (direction tx or rx)",
        series: &[
            (Some("tx"), Figure::NetTxBytesRate),
            (Some("rx"), Figure::NetRxBytesRate),
        ],
    },
];

impl ProcessGauge {
    /// A process's series over the tick: none where the signal was off or the report has no
    /// section for the process (a series of zeros for every idle process would only add
    /// cardinality).
    fn values(&self, tick: &Tick, p: &Process) -> Vec<(Option<&'static str>, f64)> {
        self.series
            .iter()
            .filter(|(_, figure)| tick.measured(*figure))
            .filter_map(|&(direction, figure)| Some((direction, tick.process_section(figure, p)?)))
            .collect()
    }
}

/// One per-application gauge: its name and help and its value.
struct AppGauge {
    name: &'static str,
    help: &'static str,
    value: fn(&App) -> Option<f64>,
}

const APP_GAUGES: [AppGauge; 4] = [
    AppGauge {
        name: "profiler_app_cpu_cores",
        help: "CPUs an application (same comm or cgroup) used over the last tick",
        value: |app| Some(app.cpu.cores),
    },
    AppGauge {
        name: "profiler_app_processes",
        help: "Processes of an application seen in the last tick",
        value: |app| Some(app.processes as f64),
    },
    AppGauge {
        name: "profiler_app_io_bytes_per_second",
        help: "Block IO bytes per second of an application",
        value: |app| app.io.as_ref().map(|io| io.bytes_per_second),
    },
    AppGauge {
        name: "profiler_app_net_bytes_per_second",
        help: "Socket bytes per second of an application",
        value: |app| app.net.as_ref().map(|net| net.bytes_per_second),
    },
];

struct Families {
    /// In the order of [`PROCESS_GAUGES`].
    process: Vec<Family<ProcessLabels, GaugeF>>,
    /// In the order of [`APP_GAUGES`].
    app: Vec<Family<AppLabels, GaugeF>>,
    host_busy_cores: GaugeF,
    host_cpus: GaugeF,
    host_context_switches: CounterF,
    own_cpu_seconds: CounterF,
    own_bpf_seconds: CounterF,
    own_peak_rss: GaugeF,
    drops: Family<KindLabels, CounterF>,
    windows: CounterF,
    windows_failed: Family<ReasonLabels, CounterF>,
    ticks_late: CounterF,
    alerts: Family<KindLabels, CounterF>,
    escalations: Family<TriggerLabels, CounterF>,
    victim_seconds: Family<VictimStateLabels, CounterF>,
    victim_delay: Family<VictimCulpritLabels, CounterF>,
    /// The culprit labels each victim has series for.
    victim_culprits: HashMap<String, HashSet<String>>,
}

/// The registry and its metrics; updates and scrapes take turns so a scrape never sees half a
/// refresh.
pub struct Metrics {
    inner: Mutex<(Registry, Families)>,
    top: usize,
}

/// Prometheus naming: `profiler_` prefix, base units in the name, `_total` on counters
/// (prometheus-client appends it).
fn families(registry: &mut Registry) -> Families {
    macro_rules! reg {
        ($name:expr, $help:expr, $metric:expr) => {{
            let metric = $metric;
            registry.register($name, $help, metric.clone());
            metric
        }};
    }
    Families {
        process: PROCESS_GAUGES
            .iter()
            .map(|gauge| reg!(gauge.name, gauge.help, Family::default()))
            .collect(),
        app: APP_GAUGES
            .iter()
            .map(|gauge| reg!(gauge.name, gauge.help, Family::default()))
            .collect(),
        host_busy_cores: reg!(
            "profiler_host_busy_cores",
            "Busy CPUs of the host over the last tick",
            GaugeF::default()
        ),
        host_cpus: reg!(
            "profiler_host_cpus",
            "Online CPUs of the host",
            GaugeF::default()
        ),
        host_context_switches: reg!(
            "profiler_host_context_switches",
            "Context switches seen",
            CounterF::default()
        ),
        own_cpu_seconds: reg!(
            "profiler_own_cpu_seconds",
            "CPU time of the profiler process (user + system)",
            CounterF::default()
        ),
        own_bpf_seconds: reg!(
            "profiler_own_bpf_run_seconds",
            "Run time of the profiler's BPF programs (BPF_ENABLE_STATS)",
            CounterF::default()
        ),
        own_peak_rss: reg!(
            "profiler_own_peak_resident_bytes",
            "Peak resident memory of the profiler process",
            GaugeF::default()
        ),
        drops: reg!(
            "profiler_drops",
            "Updates the kernel side could not store, by kind (see report.json drops)",
            Family::default()
        ),
        windows: reg!(
            "profiler_windows_written",
            "Record windows written to disk",
            CounterF::default()
        ),
        windows_failed: reg!(
            "profiler_windows_failed",
            "Record windows lost because they could not be written, by reason (no_space, other)",
            Family::default()
        ),
        ticks_late: reg!(
            "profiler_ticks_late",
            "Record ticks that came over half a tick late (the host starved the recorder)",
            CounterF::default()
        ),
        alerts: reg!(
            "profiler_alerts",
            "Alert events, by kind (firing or resolved)",
            Family::default()
        ),
        escalations: reg!(
            "profiler_escalations",
            "Incidents: times record attached its exact probes, by trigger (syscalls, alert)",
            Family::default()
        ),
        victim_seconds: reg!(
            "profiler_victim_seconds",
            "Time of a --victim's threads by state: on_cpu, runq_wait (runnable, waiting for a \
             CPU), blocked (asleep; with the offcpu signal only)",
            Family::default()
        ),
        victim_delay: reg!(
            "profiler_victim_delay_seconds",
            "Run-queue wait of a --victim's threads for CPUs a culprit (by command name) held",
            Family::default()
        ),
        victim_culprits: HashMap::new(),
    }
}

fn labels_of(p: &Process, direction: Option<&'static str>) -> ProcessLabels {
    let mut labels = vec![("pid", p.pid.to_string()), ("comm", label(&p.comm))];
    let (app, kind) = match (&p.workload, &p.cgroup) {
        (Some(workload), _) => (workload.name.as_str(), AppKind::of(workload.kind)),
        (None, Some(cgroup)) => (cgroup.as_str(), AppKind::Cgroup),
        (None, None) => (p.comm.as_str(), AppKind::Comm),
    };
    labels.push(("app", label(app)));
    labels.push(("app_kind", kind.as_str().to_owned()));
    if let Some(direction) = direction {
        labels.push(("direction", direction.to_owned()));
    }
    labels
}

/// A label value as the exposition format wants it. prometheus-client writes label values as
/// given, and process names are chosen by whoever runs the process: a `"` or a newline in one
/// would otherwise break the whole scrape.
fn label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c if c.is_control() => escaped.push(char::REPLACEMENT_CHARACTER),
            c => escaped.push(c),
        }
    }
    escaped
}

impl Metrics {
    /// `top`: processes exported per resource; the series of the others are dropped, which
    /// bounds cardinality however many processes come and go.
    pub fn new(top: usize) -> Self {
        let mut registry = Registry::default();
        let families = families(&mut registry);
        Self {
            inner: Mutex::new((registry, families)),
            top,
        }
    }

    /// Replaces the per-process and per-app series with those of `tick` (a report over the
    /// last tick; `figures`, its index, `None` when it has no length) and adds the tick's
    /// counts to the counters.
    pub fn update(&self, tick: &Report, figures: Option<&Tick<'_>>, cost: &OwnCost) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let f = &mut inner.1;
        let chosen = figures
            .map(|figures| self.chosen(figures))
            .unwrap_or_default();
        for (gauge, family) in PROCESS_GAUGES.iter().zip(&f.process) {
            family.clear();
            let Some(figures) = figures else {
                continue;
            };
            for p in &chosen {
                for (direction, value) in gauge.values(figures, p) {
                    family.get_or_create(&labels_of(p, direction)).set(value);
                }
            }
        }
        for (gauge, family) in APP_GAUGES.iter().zip(&f.app) {
            family.clear();
            let busy = tick.apps.iter().filter(|a| a.cpu.on_cpu_ns > 0);
            for app in busy.take(2 * self.top) {
                if let Some(value) = (gauge.value)(app) {
                    let labels = AppLabels {
                        app: label(&app.name),
                        kind: app.kind.as_str().to_owned(),
                    };
                    family.get_or_create(&labels).set(value);
                }
            }
        }
        Self::update_host(f, tick, cost);
    }

    /// The processes that get series: the `top` of each gauge, each once.
    fn chosen<'a>(&self, tick: &Tick<'a>) -> Vec<&'a Process> {
        let mut chosen: Vec<&Process> = Vec::new();
        for gauge in &PROCESS_GAUGES {
            let figure = |p: &Process| -> f64 { gauge.values(tick, p).iter().map(|v| v.1).sum() };
            let mut ranked: Vec<(f64, &Process)> = tick
                .report()
                .processes
                .iter()
                .map(|p| (figure(p), p))
                .filter(|&(value, _)| value > 0.0)
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (_, p) in ranked.into_iter().take(self.top) {
                if !chosen.iter().any(|c| c.pid == p.pid) {
                    chosen.push(p);
                }
            }
        }
        chosen
    }

    fn update_host(f: &mut Families, tick: &Report, cost: &OwnCost) {
        f.host_busy_cores.set(tick.host.busy_cores);
        f.host_cpus.set(f64::from(tick.cpus));
        f.host_context_switches
            .inc_by(tick.host.context_switches as f64);
        f.own_cpu_seconds.inc_by(cost.cpu_ns as f64 / 1e9);
        f.own_bpf_seconds.inc_by(cost.bpf_run_time_ns as f64 / 1e9);
        f.own_peak_rss.set(cost.peak_rss_bytes as f64);
        let drops = serde_json::to_value(&tick.drops).unwrap_or_default();
        if let Some(drops) = drops.as_object() {
            for (kind, value) in drops {
                let value = value.as_u64().unwrap_or(0);
                // Created even at zero, so dashboards see the series before the first loss.
                let counter = f.drops.get_or_create(&KindLabels { kind: kind.clone() });
                if value > 0 {
                    counter.inc_by(value as f64);
                }
            }
        }
    }

    pub fn window_written(&self) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.1.windows.inc();
    }

    pub fn window_failed(&self, because: LostBecause) {
        let reason = because.as_str().to_owned();
        self.count(|f| &f.windows_failed, &ReasonLabels { reason });
    }

    pub fn tick_late(&self) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.1.ticks_late.inc();
    }

    /// Adds the tick's time of each victim to its counters.
    pub fn add_victims(&self, victims: &[Victim]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let f = &mut inner.1;
        for v in victims {
            let name = label(&v.name);
            let states = [
                ("on_cpu", Some(v.on_cpu_ns)),
                ("runq_wait", Some(v.runq_wait_ns)),
                ("blocked", v.blocked_ns),
            ];
            for (state, ns) in states {
                let labels = VictimStateLabels {
                    victim: name.clone(),
                    state: state.to_owned(),
                };
                if let Some(ns) = ns {
                    f.victim_seconds
                        .get_or_create(&labels)
                        .inc_by(ns as f64 / 1e9);
                }
            }
            for c in v.culprits.iter().filter(|c| c.cause == Cause::Cpu) {
                let seen = f.victim_culprits.entry(name.clone()).or_default();
                let culprit = label(&c.comm);
                let culprit = if seen.contains(&culprit) || seen.len() < CULPRIT_SERIES {
                    seen.insert(culprit.clone());
                    culprit
                } else {
                    OTHER_CULPRITS.to_owned()
                };
                let labels = VictimCulpritLabels {
                    victim: name.clone(),
                    culprit,
                };
                f.victim_delay
                    .get_or_create(&labels)
                    .inc_by(c.delay_ns as f64 / 1e9);
            }
        }
    }

    pub fn alert(&self, state: AlertState) {
        let kind = state.as_str().to_owned();
        self.count(|f| &f.alerts, &KindLabels { kind });
    }

    pub fn escalation(&self, trigger: TriggerKind) {
        let trigger = trigger.as_str().to_owned();
        self.count(|f| &f.escalations, &TriggerLabels { trigger });
    }

    /// Adds one to the counter of `labels` in the family `pick` chooses.
    fn count<L>(&self, pick: impl Fn(&Families) -> &Family<L, CounterF>, labels: &L)
    where
        L: Clone + std::hash::Hash + Eq,
    {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        pick(&inner.1).get_or_create(labels).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &inner.0);
        text
    }
}

/// The metrics and the server exposing them, as `record` runs them.
pub struct Exporter {
    metrics: Arc<Metrics>,
    server: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Binds `addr` now (a taken port is a startup error) and serves the `top` processes per
    /// resource from there on.
    pub async fn start(addr: std::net::SocketAddr, top: usize) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new(top));
        let server = serve(addr, Arc::clone(&metrics)).await?;
        Ok(Self { metrics, server })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics, for a task that outlives a borrow of the exporter.
    pub fn shared(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Stops serving; returns the number of scrapes served.
    pub fn stop(self) -> u64 {
        self.server.abort();
        scrapes()
    }
}

/// Scrapes served, for the log line at shutdown.
pub static SCRAPES: AtomicU64 = AtomicU64::new(0);

pub fn scrapes() -> u64 {
    SCRAPES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::fixtures::{blame, process, report};

    /// The exposition after one update with `processes` over a one-second tick.
    fn exposition(processes: Vec<Process>, top: usize) -> String {
        let metrics = Metrics::new(top);
        let mut tick = report(1.0);
        tick.processes = processes;
        tick.blame = vec![blame((7, "culprit"), (8, "victim"), 500_000_000)];
        let cost = OwnCost {
            cpu_ns: 1_000_000,
            bpf_run_time_ns: 0,
            bpf_runs: 0,
            bpf_measured_share: 1.0,
            cpu_percent_of_one_core: 0.1,
            peak_rss_bytes: 1 << 20,
            sampler_ns_per_sample: None,
            phases_ms: None,
        };
        metrics.update(&tick, Tick::new(&tick).as_ref(), &cost);
        metrics.encode()
    }

    #[test]
    fn hostile_process_names_cannot_break_the_exposition() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
        assert_eq!(label("bell\u{7}"), "bell\u{fffd}");

        let text = exposition(vec![process(7, "evil\"} 1\nprofiler_fake 9", 0.5)], 5);
        assert!(
            !text.lines().any(|l| l.starts_with("profiler_fake")),
            "{text}"
        );
        assert!(
            text.contains(r#"comm="evil\"} 1\nprofiler_fake 9""#),
            "{text}"
        );
    }

    #[test]
    fn every_process_gauge_has_its_series_with_directions_where_split() {
        let text = exposition(vec![process(7, "culprit", 0.5)], 5);
        let labels = r#"pid="7",comm="culprit",app="culprit",app_kind="comm""#;
        for line in [
            format!("profiler_process_cpu_cores{{{labels}}} 0.5"),
            format!("profiler_process_runq_wait_ratio{{{labels}}} 0.25"),
            format!("profiler_process_delay_caused_ratio{{{labels}}} 0.5"),
            format!("profiler_process_syscalls_per_second{{{labels}}} 3000.0"),
            format!(r#"profiler_process_io_bytes_per_second{{{labels},direction="read"}} 4000.0"#),
            format!(r#"profiler_process_io_bytes_per_second{{{labels},direction="write"}} 6000.0"#),
            format!(r#"profiler_process_net_bytes_per_second{{{labels},direction="tx"}} 1000.0"#),
            format!(r#"profiler_process_net_bytes_per_second{{{labels},direction="rx"}} 2000.0"#),
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn only_the_top_of_each_gauge_get_series() {
        let mut quiet = process(9, "quiet", 0.1);
        quiet.syscalls = None;
        quiet.sched = None;
        quiet.io = None;
        quiet.net = None;
        let mut loud = process(8, "loud", 0.2);
        loud.io = None;
        let text = exposition(vec![quiet, loud, process(7, "busy", 0.9)], 1);
        // quiet leads no gauge: it is nobody's top one.
        assert!(text.contains(r#"pid="7""#), "{text}");
        assert!(!text.contains(r#"pid="9""#), "{text}");
    }

    #[test]
    fn victim_time_adds_up_tick_after_tick_and_culprit_series_are_bounded() {
        let metrics = Metrics::new(5);
        let tick = |culprits: std::ops::Range<u32>| Victim {
            name: "redis-server".to_owned(),
            pids: vec![7],
            on_cpu_ns: 250_000_000,
            user_ns: None,
            system_ns: None,
            runq_wait_ns: 500_000_000,
            blocked_ns: None,
            blocked: Vec::new(),
            slept_through: 0,
            members: Vec::new(),
            cgroup_pressure: Vec::new(),
            culprits: culprits
                .map(|pid| crate::report::Culprit {
                    pid,
                    comm: format!("rogue{pid}"),
                    cause: Cause::Cpu,
                    delay_ns: 100_000_000,
                })
                .collect(),
            delayacct: None,
            verdict: String::new(),
        };
        metrics.add_victims(&[tick(0..CULPRIT_SERIES as u32)]);
        metrics.add_victims(&[tick(0..CULPRIT_SERIES as u32 + 2)]);
        let text = metrics.encode();
        let series = |labels: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(labels))
                .unwrap_or_else(|| panic!("no {labels}:\n{text}"))
                .trim()
                .parse::<f64>()
                .unwrap()
        };
        let state = r#"profiler_victim_seconds_total{victim="redis-server",state="#;
        assert_eq!(series(&format!(r#"{state}"runq_wait"}}"#)), 1.0);
        assert_eq!(series(&format!(r#"{state}"on_cpu"}}"#)), 0.5);
        assert!(
            !text.contains(r#"state="blocked""#),
            "blocked unmeasured: {text}"
        );
        let delay = r#"profiler_victim_delay_seconds_total{victim="redis-server",culprit="#;
        assert_eq!(series(&format!(r#"{delay}"rogue0"}}"#)), 0.2);
        // Two culprits past the bound land in `other`, the twenty first seen keep theirs.
        assert!((series(&format!(r#"{delay}"other"}}"#)) - 0.2).abs() < 1e-9);
        assert!(
            !text.contains(&format!("rogue{}", CULPRIT_SERIES)),
            "{text}"
        );
    }
}
