//! Sortable tables of the top consumers of each resource: every cell carries the raw value it
//! sorts by (`data-value`), the text shown is for people.

use maud::{Markup, html};

use super::Text;
use crate::report::{Process, Report};

/// Rows per table: the report keeps every process, the page keeps the ones worth reading.
const MAX_ROWS: usize = 50;

pub enum Cell {
    /// Sorted by the number, shown as the text.
    Num(f64, String),
    Text(String),
}

fn num(value: u64) -> Cell {
    Cell::Num(value as f64, value.to_string())
}

fn float(value: f64, decimals: usize) -> Cell {
    Cell::Num(value, format!("{value:.decimals$}"))
}

fn bytes(value: u64) -> Cell {
    Cell::Num(value as f64, human_bytes(value))
}

fn nanos(value: u64) -> Cell {
    Cell::Num(value as f64, human_nanos(value))
}

fn text(value: &str) -> Cell {
    Cell::Text(value.to_owned())
}

pub fn human_bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

pub fn human_nanos(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A table whose columns sort on a click of their header (the page's script).
pub fn sortable(id: &str, headers: &[&str], rows: &[Vec<Cell>]) -> Markup {
    let Some(first) = rows.first() else {
        return html! { p class="empty" { "Nothing to show." } };
    };
    html! {
        table class="sortable" id=(id) {
            thead {
                tr {
                    @for (i, header) in headers.iter().enumerate() {
                        @let kind = match first.get(i) {
                            Some(Cell::Num(..)) => "num",
                            _ => "text",
                        };
                        th data-type=(kind) title="click to sort" { (header) }
                    }
                }
            }
            tbody {
                @for row in rows {
                    tr {
                        @for cell in row {
                            @match cell {
                                Cell::Num(value, shown) => {
                                    td class="n" data-value=(value) { (Text(shown)) }
                                }
                                Cell::Text(shown) => {
                                    td data-value=(Text(shown)) { (Text(shown)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The processes with some of a resource, most first, at most `MAX_ROWS`.
fn top_by<T>(
    report: &Report,
    figures: impl Fn(&Process) -> Option<T>,
    key: impl Fn(&T) -> f64,
    row: impl Fn(&Process, &T) -> Vec<Cell>,
) -> Vec<Vec<Cell>> {
    let mut chosen: Vec<(&Process, T)> = report
        .processes
        .iter()
        .filter_map(|p| figures(p).map(|f| (p, f)))
        .filter(|(_, f)| key(f) > 0.0)
        .collect();
    chosen.sort_by(|a, b| key(&b.1).total_cmp(&key(&a.1)));
    chosen
        .iter()
        .take(MAX_ROWS)
        .map(|(p, f)| row(p, f))
        .collect()
}

fn who(p: &Process) -> [Cell; 2] {
    [num(u64::from(p.pid)), text(&p.comm)]
}

fn with_who(p: &Process, rest: Vec<Cell>) -> Vec<Cell> {
    who(p).into_iter().chain(rest).collect()
}

/// One `(title, table)` per resource.
pub fn resources(report: &Report) -> Vec<(&'static str, Markup)> {
    vec![
        cpu(report),
        sched(report),
        blame(report),
        syscalls(report),
        io(report),
        net(report),
        mem(report),
    ]
}

fn cpu(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| Some(p.cpu.clone()),
        |c| c.on_cpu_ns as f64,
        |p, c| {
            let hottest = c.hottest.as_ref().map_or("", |h| h.function.as_str());
            with_who(
                p,
                vec![
                    float(c.cores, 3),
                    float(c.host_percent, 1),
                    num(c.samples),
                    text(hottest),
                    text(&p.cmdline.join(" ")),
                ],
            )
        },
    );
    let columns = [
        "pid", "comm", "cores", "host %", "samples", "hottest", "cmdline",
    ];
    ("CPU", sortable("cpu", &columns, &rows))
}

fn sched(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| p.sched.clone(),
        |s| s.runq_wait_ns as f64,
        |p, s| {
            with_who(
                p,
                vec![
                    nanos(s.runq_wait_ns),
                    num(s.runq_waits),
                    nanos(s.runq_p99_ns),
                    num(s.voluntary_switches),
                    num(s.involuntary_switches),
                    s.offcpu_ns.map_or_else(|| text(""), nanos),
                ],
            )
        },
    );
    let columns = [
        "pid",
        "comm",
        "run-queue wait",
        "waits",
        "p99 wait",
        "voluntary",
        "involuntary",
        "off-CPU",
    ];
    ("Scheduler wait", sortable("sched", &columns, &rows))
}

fn blame(report: &Report) -> (&'static str, Markup) {
    let rows: Vec<Vec<Cell>> = report
        .blame
        .iter()
        .take(MAX_ROWS)
        .map(|b| {
            vec![
                num(u64::from(b.culprit_pid)),
                text(&b.culprit_comm),
                num(u64::from(b.victim_pid)),
                text(&b.victim_comm),
                nanos(b.delay_ns),
            ]
        })
        .collect();
    let columns = ["culprit pid", "culprit", "victim pid", "victim", "delay"];
    ("Who kept whom waiting", sortable("blame", &columns, &rows))
}

fn syscalls(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| p.syscalls.clone(),
        |s| s.count as f64,
        |p, s| {
            let top: Vec<String> = s
                .top
                .iter()
                .map(|t| format!("{} ×{}", t.name, t.count))
                .collect();
            with_who(
                p,
                vec![
                    num(s.count),
                    float(s.per_second, 0),
                    num(s.errors),
                    nanos(s.time_ns),
                    text(&top.join(", ")),
                ],
            )
        },
    );
    let columns = ["pid", "comm", "count", "per s", "errors", "time", "top"];
    ("Syscalls", sortable("syscalls", &columns, &rows))
}

fn io(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| p.io,
        |i| (i.read_bytes + i.write_bytes) as f64,
        |p, i| {
            with_who(
                p,
                vec![
                    bytes(i.read_bytes),
                    bytes(i.write_bytes),
                    bytes(i.writeback_bytes),
                    num(i.ops),
                    nanos(i.p99_latency_ns),
                ],
            )
        },
    );
    let columns = ["pid", "comm", "read", "written", "writeback", "ops", "p99"];
    ("Block IO", sortable("io", &columns, &rows))
}

fn net(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| p.net,
        |n| (n.tx_bytes + n.rx_bytes) as f64,
        |p, n| {
            with_who(
                p,
                vec![
                    bytes(n.tx_bytes),
                    bytes(n.rx_bytes),
                    float(n.bytes_per_second / 1e6, 2),
                ],
            )
        },
    );
    let columns = ["pid", "comm", "sent", "received", "MB/s"];
    ("Network", sortable("net", &columns, &rows))
}

fn mem(report: &Report) -> (&'static str, Markup) {
    let rows = top_by(
        report,
        |p| p.mem,
        |m| m.rss_bytes.unwrap_or(0) as f64 + (m.minor_faults + m.major_faults) as f64,
        |p, m| {
            with_who(
                p,
                vec![
                    m.rss_bytes.map_or_else(|| text(""), bytes),
                    num(m.minor_faults),
                    num(m.major_faults),
                ],
            )
        },
    );
    let columns = ["pid", "comm", "RSS", "minor faults", "major faults"];
    ("Memory", sortable("mem", &columns, &rows))
}
