//! Prometheus/OpenMetrics metrics of `profiler record`: the top processes per resource, the
//! applications, the host, and the profiler's own cost and losses, refreshed every tick.

mod server;

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicU64, Ordering},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
pub use server::serve;

use crate::report::{OwnCost, Process, Report};

type GaugeF = Gauge<f64, AtomicU64>;
type CounterF = Counter<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    pid: u32,
    comm: String,
    /// cgroup path when known, else the command name: what an operator groups by.
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    pid: u32,
    comm: String,
    app: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    app: String,
    /// `comm` or `cgroup`.
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

struct Families {
    cpu_cores: Family<ProcessLabels, GaugeF>,
    runq_wait_ratio: Family<ProcessLabels, GaugeF>,
    delay_caused_ratio: Family<ProcessLabels, GaugeF>,
    syscalls_rate: Family<ProcessLabels, GaugeF>,
    io_rate: Family<DirectionLabels, GaugeF>,
    net_rate: Family<DirectionLabels, GaugeF>,
    app_cpu_cores: Family<AppLabels, GaugeF>,
    app_processes: Family<AppLabels, GaugeF>,
    app_io_rate: Family<AppLabels, GaugeF>,
    app_net_rate: Family<AppLabels, GaugeF>,
    host_busy_cores: GaugeF,
    host_cpus: GaugeF,
    host_context_switches: CounterF,
    own_cpu_seconds: CounterF,
    own_bpf_seconds: CounterF,
    own_peak_rss: GaugeF,
    drops: Family<KindLabels, CounterF>,
    windows: CounterF,
    alerts: Family<KindLabels, CounterF>,
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
        ($name:literal, $help:literal, $metric:expr) => {{
            let metric = $metric;
            registry.register($name, $help, metric.clone());
            metric
        }};
    }
    Families {
        cpu_cores: reg!(
            "profiler_process_cpu_cores",
            "CPUs a process used over the last tick (1 = one core)",
            Family::default()
        ),
        runq_wait_ratio: reg!(
            "profiler_process_runq_wait_ratio",
            "Share of the last tick a process's threads waited for a CPU, summed over threads",
            Family::default()
        ),
        delay_caused_ratio: reg!(
            "profiler_process_delay_caused_ratio",
            "CPUs' worth of other processes' run-queue waiting a process caused over the last tick",
            Family::default()
        ),
        syscalls_rate: reg!(
            "profiler_process_syscalls_per_second",
            "Syscalls per second of a process over the last tick",
            Family::default()
        ),
        io_rate: reg!(
            "profiler_process_io_bytes_per_second",
            "Block IO bytes per second charged to a process (direction read or write)",
            Family::default()
        ),
        net_rate: reg!(
            "profiler_process_net_bytes_per_second",
            "TCP/UDP socket bytes per second of a process (direction tx or rx)",
            Family::default()
        ),
        app_cpu_cores: reg!(
            "profiler_app_cpu_cores",
            "CPUs an application (same comm or cgroup) used over the last tick",
            Family::default()
        ),
        app_processes: reg!(
            "profiler_app_processes",
            "Processes of an application seen in the last tick",
            Family::default()
        ),
        app_io_rate: reg!(
            "profiler_app_io_bytes_per_second",
            "Block IO bytes per second of an application",
            Family::default()
        ),
        app_net_rate: reg!(
            "profiler_app_net_bytes_per_second",
            "Socket bytes per second of an application",
            Family::default()
        ),
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
        alerts: reg!(
            "profiler_alerts",
            "Alert events, by kind (firing or resolved)",
            Family::default()
        ),
    }
}

fn app_of(p: &Process) -> String {
    label(p.cgroup.as_deref().unwrap_or(&p.comm))
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
    /// last tick) and adds the tick's counts to the counters.
    pub fn update(&self, tick: &Report, cost: &OwnCost) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let f = &mut inner.1;
        let tick_ns = (tick.duration_s * 1e9).max(1.0);
        let mut delay: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        for b in &tick.blame {
            *delay.entry(b.culprit_pid).or_default() += b.delay_ns;
        }
        // The resources processes are ranked by; the top of each gets its series.
        type Figure<'a> = Box<dyn Fn(&Process) -> f64 + 'a>;
        let figures: [Figure<'_>; 5] = [
            Box::new(|p| p.cpu.cores),
            Box::new(|p| p.sched.as_ref().map_or(0.0, |s| s.runq_wait_ns as f64)),
            Box::new(|p| delay.get(&p.pid).copied().unwrap_or(0) as f64),
            Box::new(|p| p.syscalls.as_ref().map_or(0.0, |s| s.per_second)),
            Box::new(|p| {
                p.io.map_or(0.0, |io| io.bytes_per_second)
                    + p.net.map_or(0.0, |n| n.bytes_per_second)
            }),
        ];
        let mut chosen: Vec<&Process> = Vec::new();
        for figure in &figures {
            let mut ranked: Vec<&Process> =
                tick.processes.iter().filter(|p| figure(p) > 0.0).collect();
            ranked.sort_by(|a, b| figure(b).total_cmp(&figure(a)));
            for p in ranked.into_iter().take(self.top) {
                if !chosen.iter().any(|c| c.pid == p.pid) {
                    chosen.push(p);
                }
            }
        }
        f.cpu_cores.clear();
        f.runq_wait_ratio.clear();
        f.delay_caused_ratio.clear();
        f.syscalls_rate.clear();
        f.io_rate.clear();
        f.net_rate.clear();
        for p in chosen {
            let labels = ProcessLabels {
                pid: p.pid,
                comm: label(&p.comm),
                app: app_of(p),
            };
            f.cpu_cores.get_or_create(&labels).set(p.cpu.cores);
            if let Some(s) = &p.sched {
                f.runq_wait_ratio
                    .get_or_create(&labels)
                    .set(s.runq_wait_ns as f64 / tick_ns);
            }
            if let Some(&d) = delay.get(&p.pid) {
                f.delay_caused_ratio
                    .get_or_create(&labels)
                    .set(d as f64 / tick_ns);
            }
            if let Some(s) = &p.syscalls {
                f.syscalls_rate.get_or_create(&labels).set(s.per_second);
            }
            let secs = tick.duration_s.max(1e-9);
            let with = |direction: &str| DirectionLabels {
                pid: labels.pid,
                comm: labels.comm.clone(),
                app: labels.app.clone(),
                direction: direction.to_owned(),
            };
            if let Some(io) = &p.io {
                f.io_rate
                    .get_or_create(&with("read"))
                    .set(io.read_bytes as f64 / secs);
                f.io_rate
                    .get_or_create(&with("write"))
                    .set(io.write_bytes as f64 / secs);
            }
            if let Some(n) = &p.net {
                f.net_rate
                    .get_or_create(&with("tx"))
                    .set(n.tx_bytes as f64 / secs);
                f.net_rate
                    .get_or_create(&with("rx"))
                    .set(n.rx_bytes as f64 / secs);
            }
        }

        f.app_cpu_cores.clear();
        f.app_processes.clear();
        f.app_io_rate.clear();
        f.app_net_rate.clear();
        for app in tick
            .apps
            .iter()
            .filter(|a| a.cpu.on_cpu_ns > 0)
            .take(2 * self.top)
        {
            let labels = AppLabels {
                app: label(&app.name),
                kind: app.kind.as_str().to_owned(),
            };
            f.app_cpu_cores.get_or_create(&labels).set(app.cpu.cores);
            f.app_processes
                .get_or_create(&labels)
                .set(app.processes as f64);
            if let Some(io) = &app.io {
                f.app_io_rate
                    .get_or_create(&labels)
                    .set(io.bytes_per_second);
            }
            if let Some(net) = &app.net {
                f.app_net_rate
                    .get_or_create(&labels)
                    .set(net.bytes_per_second);
            }
        }

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

    pub fn alert(&self, state: &str) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .1
            .alerts
            .get_or_create(&KindLabels {
                kind: state.to_owned(),
            })
            .inc();
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

/// Scrapes served, for the log line at shutdown.
pub static SCRAPES: AtomicU64 = AtomicU64::new(0);

pub fn scrapes() -> u64 {
    SCRAPES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_process_names_cannot_break_the_exposition() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
        assert_eq!(label("bell\u{7}"), "bell\u{fffd}");

        let metrics = Metrics::new(5);
        {
            let inner = metrics.inner.lock().unwrap();
            inner
                .1
                .cpu_cores
                .get_or_create(&ProcessLabels {
                    pid: 7,
                    comm: label("evil\"} 1\nprofiler_fake 9"),
                    app: label("/"),
                })
                .set(0.5);
        }
        let text = metrics.encode();
        assert!(
            !text.lines().any(|l| l.starts_with("profiler_fake")),
            "{text}"
        );
        assert!(
            text.contains(r#"comm="evil\"} 1\nprofiler_fake 9""#),
            "{text}"
        );
    }
}
