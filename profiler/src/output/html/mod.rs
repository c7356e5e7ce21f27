//! `report.html`: the whole run on one self-contained page (styles, script, plots and
//! flamegraphs inline; nothing fetched), for reading offline in any browser. maud escapes every
//! interpolation; only our own style, script and plots and inferno's SVGs (which escape frame
//! names themselves) go in as `PreEscaped`.

mod plot;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt::{self, Display, Write as _};

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

use crate::{
    model::timeline::{TOP_CPU, TOP_WAIT},
    report::{AppKind, BlockedWhy, Cause, Report, Victim},
};

/// Stacks listed under the flamegraph, hottest first.
const HOT_STACKS: usize = 15;

/// The page. `folded` is stacks.folded's text, `flamegraph` and `offcpu` inferno's SVGs.
pub fn render(report: &Report, folded: &str, flamegraph: &[u8], offcpu: Option<&[u8]>) -> String {
    let timeline = html! {
        h3 { "CPU by process (top " (TOP_CPU) ")" }
        (PreEscaped(plot::cpu_stacked(&report.timeline, report.duration_s, TOP_CPU)))
        h3 { "Waiting for a CPU (top " (TOP_WAIT) " victims)" }
        (PreEscaped(plot::runq_wait_lines(&report.timeline, report.duration_s, TOP_WAIT)))
    };
    let cpu_flame = html! {
        p class="hint" {
            "Click a frame to zoom, Ctrl-F or the Search button to highlight functions."
        }
        (embed_svg("cpu-flamegraph", flamegraph))
        h3 { "Hottest stacks" }
        (hot_stacks(folded))
    };
    let consumers = html! {
        p class="hint" { "Click a column header to sort." }
        @for (title, table) in tables::resources(report) {
            h3 { (title) }
            (table)
        }
    };
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title {
                    "profiler diagnose: " (Text(&report.hostname)) " at " (Text(&report.started_at))
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "What was eating " code { (Text(&report.hostname)) } "?" }
                @if let Some(victim) = &report.victim {
                    (section("victim", "The victim", victim_panel(victim)))
                }
                (section("verdict", "Verdict", html! {
                    p class="verdict" { (Text(&report.verdict)) }
                }))
                (section("suspects", "Suspects", suspects(report)))
                (section("host", "Host", host(report)))
                (section("timeline", "Timeline", timeline))
                (section("flamegraph", "Where the CPU went", cpu_flame))
                @if let Some(offcpu) = offcpu {
                    (section(
                        "offcpu",
                        "Where processes blocked (off-CPU)",
                        embed_svg("offcpu-flamegraph", offcpu),
                    ))
                }
                (section("consumers", "Top consumers", consumers))
                (section(
                    "cost",
                    "The profiler's own cost and losses",
                    PreEscaped(cost_and_drops(report)),
                ))
                footer {
                    "profiler " (Text(&report.profiler_version))
                    " · schema " (Text(&report.schema))
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
        "\n"
    }
    .into_string()
}

/// Text from the report (names, arguments, paths, the verdict) as the page shows it: escaped by
/// maud, `'` as well so that it is safe between either quotes, and control characters, which
/// HTML text may not hold, as U+FFFD to show that something was there. Any `Display` value, so
/// that an enum shows as the string the report writes for it.
struct Text<T>(T);

impl<T: Display> Render for Text<T> {
    fn render_to(&self, buffer: &mut String) {
        let _ = write!(Escape(buffer), "{}", self.0);
    }
}

struct Escape<'a>(&'a mut String);

impl fmt::Write for Escape<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let special = |c: char| c == '\'' || (c.is_control() && c != '\n' && c != '\t');
        let mut rest = text;
        while let Some(at) = rest.find(special) {
            let (plain, tail) = rest.split_at(at);
            plain.render_to(self.0);
            let mut chars = tail.chars();
            let replacement = match chars.next() {
                Some('\'') => "&#39;",
                _ => "\u{fffd}",
            };
            self.0.push_str(replacement);
            rest = chars.as_str();
        }
        rest.render_to(self.0);
        Ok(())
    }
}

fn section(id: &str, title: &str, body: Markup) -> Markup {
    html! {
        section id=(id) {
            h2 { (title) }
            (body)
        }
    }
}

/// The `--victim`'s verdict, its time as one bar (on a CPU, waiting for one, asleep and in
/// what), and who held the CPUs it waited for.
fn victim_panel(victim: &Victim) -> Markup {
    let mut parts = vec![
        ("on a CPU", victim.on_cpu_ns, "b-cpu"),
        ("waiting for a CPU", victim.runq_wait_ns, "b-runq"),
    ];
    parts.extend(victim.blocked.iter().map(|p| match p.why {
        BlockedWhy::Io => ("disk IO", p.ns, "b-io"),
        BlockedWhy::Memory => ("memory", p.ns, "b-mem"),
        BlockedWhy::Network => ("network", p.ns, "b-net"),
        BlockedWhy::Lock => ("locks", p.ns, "b-lock"),
        BlockedWhy::Idle => ("idle", p.ns, "b-idle"),
        BlockedWhy::Other => ("asleep, other", p.ns, "b-other"),
    }));
    let total = parts.iter().map(|p| p.1).sum::<u64>().max(1) as f64;
    html! {
        p class="verdict" { (Text(&victim.verdict)) }
        div class="budget" {
            @for (label, ns, class) in parts.iter().filter(|p| p.1 > 0) {
                span class=(class) style=(format!("width:{:.2}%", *ns as f64 * 100.0 / total))
                    title=(format!("{label}: {:.2} s", *ns as f64 / 1e9)) { (label) }
            }
        }
        @if !victim.culprits.is_empty() {
            table class="suspects" {
                thead { tr { th { "pid" } th { "comm" } th { "cost it" } th { "time" } } }
                tbody {
                    @for c in &victim.culprits {
                        tr {
                            td { (c.pid) }
                            td { (Text(&c.comm)) }
                            td { (cost_words(c.cause)) }
                            td class="n" { (format!("{:.3} s", c.delay_ns as f64 / 1e9)) }
                        }
                    }
                }
            }
        }
    }
}

/// How a victim's culprit cost it time, as its table says it.
fn cost_words(cause: Cause) -> &'static str {
    match cause {
        Cause::Cpu => "held a CPU it waited for",
        Cause::Io => "loaded the disks it waited on (inferred)",
        Cause::Memory => "grew while it waited on memory (inferred)",
    }
}

fn suspects(report: &Report) -> Markup {
    if report.suspects.is_empty() {
        return html! { p class="empty" { "No suspects: nothing crossed a threshold." } };
    }
    html! {
        table class="suspects" {
            thead {
                tr {
                    th { "#" } th { "pid" } th { "comm" } th { "resource" } th { "value" }
                    th { "confidence" } th { "reason" }
                }
            }
            tbody {
                @for s in &report.suspects {
                    tr {
                        td { (s.rank) }
                        td { (s.pid) }
                        td {
                            (Text(&s.comm))
                            @if let Some(app) = &s.app {
                                @if app.kind == AppKind::Comm {
                                    " (" (app.processes) " processes)"
                                } @else {
                                    " (" (app.kind.as_str()) " " (Text(&app.name)) ", "
                                    (app.processes) " processes)"
                                }
                            }
                        }
                        td { (Text(&s.resource)) }
                        td class="n" { (format!("{:.2}", s.value)) " " (Text(&s.unit)) }
                        td { (s.confidence.as_str()) }
                        td { (Text(&s.reason)) }
                    }
                }
            }
        }
    }
}

fn host(report: &Report) -> Markup {
    let h = &report.host;
    let samples = &report.samples;
    let mut facts = vec![
        ("hostname", html! { (Text(&report.hostname)) }),
        ("started", html! { (Text(&report.started_at)) }),
        (
            "sampled",
            html! { (format!("{:.1}", report.duration_s)) " s" },
        ),
        ("CPUs", html! { (report.cpus) }),
        ("sampling", html! { (report.frequency_hz) " Hz per CPU" }),
        (
            "busy",
            html! { (format!("{:.2} cores ({:.1} %)", h.busy_cores, h.busy_percent)) },
        ),
        ("processes seen", html! { (h.processes_seen) }),
        ("context switches", html! { (h.context_switches) }),
        (
            "samples",
            html! {
                (samples.total) " (" (samples.idle) " idle, " (samples.kernel_only) " kernel-only)"
            },
        ),
    ];
    if let Some(disk) = &h.busiest_disk {
        facts.push((
            "busiest disk",
            html! { (Text(&disk.device)) " busy " (format!("{:.1}", disk.busy_percent)) " %" },
        ));
    }
    facts.push((
        "signals",
        html! {
            @for (i, (name, state)) in report.signals.iter().enumerate() {
                @if i > 0 { "; " }
                (Text(name)) ": " (Text(state))
            }
        },
    ));
    definitions(&facts)
}

fn definitions(facts: &[(&str, Markup)]) -> Markup {
    html! {
        dl class="facts" {
            @for (name, value) in facts {
                dt { (name) }
                dd { (value) }
            }
        }
    }
}

fn cost_and_drops(report: &Report) -> String {
    let drops = report.drops.nonzero();
    let drops: Vec<(&str, Markup)> = drops
        .iter()
        .map(|(name, n)| (name.as_str(), html! { (n) }))
        .collect();
    html! {
        @if let Some(cost) = &report.own_cost {
            (definitions(&[
                (
                    "CPU",
                    html! {
                        (format!("{:.2}", cost.cpu_percent_of_one_core)) " % of one core ("
                        (tables::human_nanos(cost.cpu_ns)) " process, "
                        (tables::human_nanos(cost.bpf_run_time_ns)) " in " (cost.bpf_runs)
                        " BPF program runs)"
                    },
                ),
                ("peak RSS", html! { (tables::human_bytes(cost.peak_rss_bytes)) }),
            ]))
        } @else {
            p class="empty" { "Not measured." }
        }
        @if let Some(unwinding) = &report.unwinding {
            (definitions(&[("stacks", html! { (unwinding_summary(unwinding)) })]))
        }
        @if drops.is_empty() {
            p { "Nothing was dropped." }
        } @else {
            h3 { "Drops" }
            (definitions(&drops))
        }
    }
    .into_string()
}

/// How the CPU samples' user stacks were walked, in one line.
fn unwinding_summary(unwinding: &crate::report::Unwinding) -> String {
    let method = match unwinding.cpu {
        crate::report::UnwindMethod::Tables => "unwind tables",
        crate::report::UnwindMethod::FramePointers => "frame pointers",
    };
    let mut text = format!(
        "CPU samples walked with {method}: {} with tables, {} before their process had one, {} \
         falling back to frame pointers somewhere",
        unwinding.walked_samples, unwinding.before_table_samples, unwinding.fell_back_samples
    );
    if let Some(tables) = &unwinding.tables {
        text.push_str(&format!(
            "; tables of {} processes, {} objects, {} of {} rows ({})",
            tables.processes,
            tables.objects,
            tables.rows_used,
            tables.rows_capacity,
            tables::human_bytes(tables.memory_bytes)
        ));
    }
    text
}

/// Restores `history.replaceState` failures to no-ops: inferno's script records the zoom and
/// search in the URL, which an `about:srcdoc` document may not rewrite.
const FRAME_SHIM: &str = "<script>(function(){var r=history.replaceState.bind(history);\
     history.replaceState=function(){try{r.apply(null,arguments)}catch(e){}};})();</script>";

/// An inferno SVG in an iframe of its own (`srcdoc`, so still inline): its script looks up
/// fixed element ids and the document's first `<svg>`, which the page's other plots would break.
fn embed_svg(id: &str, svg: &[u8]) -> Markup {
    let svg = String::from_utf8_lossy(svg);
    // The XML declaration and the DTD reference mean nothing in an HTML document.
    let svg = without_urls(svg.find("<svg").map_or(&*svg, |at| &svg[at..]));
    let height = svg_height(&svg).unwrap_or(600.0) + 8.0;
    let doc = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                (PreEscaped(FRAME_SHIM))
                style { "body{margin:0}svg{display:block;width:100%}" }
            }
            body { (PreEscaped(svg)) }
        }
    };
    html! {
        iframe class="flamegraph" id=(id) title="flamegraph" style={ "height:" (height) "px" }
            srcdoc=(Text(doc.0)) {}
    }
}

/// `svg` without URLs outside XML namespaces: inferno credits its sources in an XML comment, a
/// script comment and a script string. None is fetched, but a page with no other URL is simple
/// to check. Frame names are outside the script, so they are left as they are.
fn without_urls(svg: &str) -> String {
    let svg = without_comments(svg);
    let (Some(open), Some(close)) = (svg.find("<script"), svg.find("</script>")) else {
        return svg;
    };
    if close < open {
        return svg;
    }
    let script: Vec<String> = svg[open..close]
        .lines()
        .filter(|line| !(line.trim_start().starts_with("//") && line.contains("://")))
        // In a script string `\/` is `/`: the message reads the same.
        .map(|line| line.replace("://", ":\\/\\/"))
        .collect();
    format!("{}{}{}", &svg[..open], script.join("\n"), &svg[close..])
}

/// `svg` without its `<!-- -->` comments.
fn without_comments(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(open) = rest.find("<!--") {
        out.push_str(&rest[..open]);
        rest = rest[open..]
            .find("-->")
            .map_or("", |close| &rest[open + close + 3..]);
    }
    out.push_str(rest);
    out
}

/// The `height` attribute of the root `<svg>` tag.
fn svg_height(svg: &str) -> Option<f64> {
    let tag = &svg[..svg.find('>')?];
    let at = tag.find(" height=\"")? + " height=\"".len();
    let value = &tag[at..];
    value[..value.find('"')?].parse().ok()
}

/// The `HOT_STACKS` folded lines with the largest counts.
fn hot_stacks(folded: &str) -> Markup {
    let mut lines: Vec<(u64, &str)> = folded
        .lines()
        .filter_map(|line| {
            let (stack, count) = line.rsplit_once(' ')?;
            Some((count.parse().ok()?, stack))
        })
        .collect();
    if lines.is_empty() {
        return html! { p class="empty" { "No stacks were sampled." } };
    }
    lines.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let total: u64 = lines.iter().map(|(n, _)| n).sum();
    html! {
        ol class="stacks" {
            @for (count, stack) in lines.iter().take(HOT_STACKS) {
                @let mut frames = stack.split(';');
                @let root = frames.next().unwrap_or_default();
                @let leaf: Vec<&str> = frames.rev().take(4).collect();
                li {
                    span class="n" {
                        (count) " samples ("
                        (format!("{:.1}", *count as f64 * 100.0 / total.max(1) as f64)) " %)"
                    }
                    " " b { (Text(root)) } " … " (Text(leaf.join(" ← ")))
                }
            }
        }
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1280px;padding:0 16px 32px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
.verdict{font-size:16px;background:#fff4e5;border-left:4px solid #f28e2b;padding:8px 12px}
.budget{display:flex;height:24px;margin:8px 0;border:1px solid #ccc}
.budget span{overflow:hidden;white-space:nowrap;font-size:11px;line-height:24px;color:#fff;padding-left:3px}
.b-cpu{background:#4e79a7}.b-runq{background:#e15759}.b-io{background:#f28e2b}.b-mem{background:#b07aa1}
.b-net{background:#76b7b2}.b-lock{background:#edc948;color:#222!important}.b-idle{background:#bab0ac}.b-other{background:#9c755f}
table{border-collapse:collapse;margin:4px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;max-width:480px;overflow-wrap:anywhere}
th{background:#f3f3f3}table.sortable th{cursor:pointer;user-select:none}
th.asc::after{content:' \\25b2'}th.desc::after{content:' \\25bc'}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}dd{margin:0}
.empty,.hint{color:#777}iframe.flamegraph{width:100%;border:1px solid #ddd}
svg.plot{max-width:100%;height:auto;font-size:12px}
svg.plot .axis{stroke:#444}svg.plot .grid{stroke:#e5e5e5}svg.plot .tick,svg.plot .legend{fill:#333}
svg.plot .band{stroke:#fff;stroke-width:0.5}
ol.stacks{font-family:ui-monospace,monospace;font-size:12px}
footer{margin-top:32px;color:#999;font-size:12px}
";

/// Sorts a `table.sortable` by the clicked column's `data-value`, numerically for `num` columns.
const SCRIPT: &str = "
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click',function(){
    var table=th.closest('table'),body=table.tBodies[0],col=th.cellIndex;
    var desc=!th.classList.contains('desc');
    table.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
    th.classList.add(desc?'desc':'asc');
    var num=th.dataset.type==='num';
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[col].dataset.value,y=b.cells[col].dataset.value;
      var c=num?parseFloat(x)-parseFloat(y):x.localeCompare(y);
      return desc?-c:c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  });
});
";
