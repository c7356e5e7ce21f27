//! `report.html`: the whole run on one self-contained page (styles, script, plots and
//! flamegraphs inline; nothing fetched), for reading offline in any browser.

mod plot;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::{
    model::timeline::{TOP_CPU, TOP_WAIT},
    report::{Drops, Report},
};

/// Stacks listed under the flamegraph, hottest first.
const HOT_STACKS: usize = 15;

/// The page. `folded` is stacks.folded's text, `flamegraph` and `offcpu` inferno's SVGs.
pub fn render(report: &Report, folded: &str, flamegraph: &[u8], offcpu: Option<&[u8]>) -> String {
    let mut page = String::with_capacity(flamegraph.len() * 2 + 64 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>profiler diagnose: {} at {}</title><style>{STYLE}</style></head><body>\
         <h1>What was eating <code>{}</code>?</h1>",
        esc(&report.hostname),
        esc(&report.started_at),
        esc(&report.hostname),
    );
    section(
        &mut page,
        "verdict",
        "Verdict",
        &format!("<p class=\"verdict\">{}</p>", esc(&report.verdict)),
    );
    section(&mut page, "suspects", "Suspects", &suspects(report));
    section(&mut page, "host", "Host", &host(report));
    let timeline = format!(
        "<h3>CPU by process (top {TOP_CPU})</h3>{}<h3>Waiting for a CPU (top {TOP_WAIT} victims)</h3>{}",
        plot::cpu_stacked(&report.timeline, report.duration_s, TOP_CPU),
        plot::runq_wait_lines(&report.timeline, report.duration_s, TOP_WAIT),
    );
    section(&mut page, "timeline", "Timeline", &timeline);
    let cpu_flame = format!(
        "<p class=\"hint\">Click a frame to zoom, Ctrl-F or the Search button to highlight \
         functions.</p>{}<h3>Hottest stacks</h3>{}",
        embed_svg("cpu-flamegraph", flamegraph),
        hot_stacks(folded)
    );
    section(&mut page, "flamegraph", "Where the CPU went", &cpu_flame);
    if let Some(offcpu) = offcpu {
        section(
            &mut page,
            "offcpu",
            "Where processes blocked (off-CPU)",
            &embed_svg("offcpu-flamegraph", offcpu),
        );
    }
    let mut consumers = String::from("<p class=\"hint\">Click a column header to sort.</p>");
    for (title, table) in tables::resources(report) {
        let _ = write!(consumers, "<h3>{}</h3>{table}", esc(title));
    }
    section(&mut page, "consumers", "Top consumers", &consumers);
    section(
        &mut page,
        "cost",
        "The profiler's own cost and losses",
        &cost_and_drops(report),
    );
    let _ = writeln!(
        page,
        "<footer>profiler {} · schema {}</footer><script>{SCRIPT}</script></body></html>",
        esc(&report.profiler_version),
        esc(&report.schema)
    );
    page
}

/// Text made safe for HTML content and attribute values (and for SVG text inside HTML).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in HTML text; show that something was there.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn section(page: &mut String, id: &str, title: &str, body: &str) {
    let _ = write!(
        page,
        "<section id=\"{id}\"><h2>{}</h2>{body}</section>",
        esc(title)
    );
}

fn suspects(report: &Report) -> String {
    if report.suspects.is_empty() {
        return "<p class=\"empty\">No suspects: nothing crossed a threshold.</p>".to_owned();
    }
    let mut out = String::from(
        "<table class=\"suspects\"><thead><tr><th>#</th><th>pid</th><th>comm</th>\
         <th>resource</th><th>value</th><th>reason</th></tr></thead><tbody>",
    );
    for s in &report.suspects {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.2} {}</td>\
             <td>{}</td></tr>",
            s.rank,
            s.pid,
            esc(&s.comm),
            s.resource,
            s.value,
            s.unit,
            esc(&s.reason)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn host(report: &Report) -> String {
    let h = &report.host;
    let mut facts = vec![
        ("hostname", esc(&report.hostname)),
        ("started", esc(&report.started_at)),
        ("sampled", format!("{:.1} s", report.duration_s)),
        ("CPUs", report.cpus.to_string()),
        ("sampling", format!("{} Hz per CPU", report.frequency_hz)),
        (
            "busy",
            format!("{:.2} cores ({:.1} %)", h.busy_cores, h.busy_percent),
        ),
        ("processes seen", h.processes_seen.to_string()),
        ("context switches", h.context_switches.to_string()),
        (
            "samples",
            format!(
                "{} ({} idle, {} kernel-only)",
                report.samples.total, report.samples.idle, report.samples.kernel_only
            ),
        ),
    ];
    if let Some(disk) = &h.busiest_disk {
        facts.push((
            "busiest disk",
            format!("{} busy {:.1} %", esc(&disk.device), disk.busy_percent),
        ));
    }
    let signals: Vec<String> = report
        .signals
        .iter()
        .map(|(signal, state)| format!("{signal}: {}", esc(&state.to_string())))
        .collect();
    facts.push(("signals", signals.join("; ")));
    definitions(&facts)
}

fn definitions(facts: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (name, value) in facts {
        let _ = write!(out, "<dt>{}</dt><dd>{value}</dd>", esc(name));
    }
    out.push_str("</dl>");
    out
}

fn cost_and_drops(report: &Report) -> String {
    let mut out = match &report.own_cost {
        Some(cost) => definitions(&[
            (
                "CPU",
                format!(
                    "{:.2} % of one core ({} process, {} in {} BPF program runs)",
                    cost.cpu_percent_of_one_core,
                    tables::human_nanos(cost.cpu_ns),
                    tables::human_nanos(cost.bpf_run_time_ns),
                    cost.bpf_runs
                ),
            ),
            ("peak RSS", tables::human_bytes(cost.peak_rss_bytes)),
        ]),
        None => "<p class=\"empty\">Not measured.</p>".to_owned(),
    };
    let drops = nonzero_drops(&report.drops);
    if drops.is_empty() {
        out.push_str("<p>Nothing was dropped.</p>");
    } else {
        out.push_str("<h3>Drops</h3>");
        let facts: Vec<(&str, String)> = drops
            .into_iter()
            .map(|(name, n)| (name, n.to_string()))
            .collect();
        out.push_str(&definitions(&facts));
    }
    out
}

/// Every drop counter above zero, by its report.json name.
fn nonzero_drops(drops: &Drops) -> Vec<(&'static str, u64)> {
    let Drops {
        user_stack_lost,
        kernel_stack_lost,
        stack_counts_full,
        on_cpu_map_full,
        runnable_map_full,
        sched_map_full,
        blame_map_full,
        syscalls_map_full,
        syscall_exits_unmatched,
        names_map_full,
        blame_uncovered_ns,
        net_map_full,
        faults_map_full,
        offcpu_map_full,
        io_map_full,
        writeback_unattributed_bytes,
    } = *drops;
    [
        ("user_stack_lost", user_stack_lost),
        ("kernel_stack_lost", kernel_stack_lost),
        ("stack_counts_full", stack_counts_full),
        ("on_cpu_map_full", on_cpu_map_full),
        ("runnable_map_full", runnable_map_full),
        ("sched_map_full", sched_map_full),
        ("blame_map_full", blame_map_full),
        ("syscalls_map_full", syscalls_map_full),
        ("syscall_exits_unmatched", syscall_exits_unmatched),
        ("names_map_full", names_map_full),
        ("blame_uncovered_ns", blame_uncovered_ns),
        ("net_map_full", net_map_full),
        ("faults_map_full", faults_map_full),
        ("offcpu_map_full", offcpu_map_full),
        ("io_map_full", io_map_full),
        ("writeback_unattributed_bytes", writeback_unattributed_bytes),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .collect()
}

/// Restores `history.replaceState` failures to no-ops: inferno's script records the zoom and
/// search in the URL, which an `about:srcdoc` document may not rewrite.
const FRAME_SHIM: &str = "<script>(function(){var r=history.replaceState.bind(history);\
     history.replaceState=function(){try{r.apply(null,arguments)}catch(e){}};})();</script>";

/// An inferno SVG in an iframe of its own (`srcdoc`, so still inline): its script looks up
/// fixed element ids and the document's first `<svg>`, which the page's other plots would break.
fn embed_svg(id: &str, svg: &[u8]) -> String {
    let svg = String::from_utf8_lossy(svg);
    // The XML declaration and the DTD reference mean nothing in an HTML document.
    let svg = without_urls(svg.find("<svg").map_or(&*svg, |at| &svg[at..]));
    let height = svg_height(&svg).unwrap_or(600.0) + 8.0;
    let doc = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">{FRAME_SHIM}<style>body{{margin:0}}svg{{display:block;width:100%}}</style></head><body>{svg}</body></html>"
    );
    format!(
        "<iframe class=\"flamegraph\" id=\"{}\" title=\"flamegraph\" style=\"height:{height}px\" \
         srcdoc=\"{}\"></iframe>",
        esc(id),
        esc(&doc)
    )
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
fn hot_stacks(folded: &str) -> String {
    let mut lines: Vec<(u64, &str)> = folded
        .lines()
        .filter_map(|line| {
            let (stack, count) = line.rsplit_once(' ')?;
            Some((count.parse().ok()?, stack))
        })
        .collect();
    if lines.is_empty() {
        return "<p class=\"empty\">No stacks were sampled.</p>".to_owned();
    }
    lines.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let total: u64 = lines.iter().map(|(n, _)| n).sum();
    let mut out = String::from("<ol class=\"stacks\">");
    for (count, stack) in lines.iter().take(HOT_STACKS) {
        let mut frames = stack.split(';');
        let root = frames.next().unwrap_or_default();
        let leaf: Vec<&str> = frames.rev().take(4).collect();
        let _ = write!(
            out,
            "<li><span class=\"n\">{count} samples ({:.1} %)</span> <b>{}</b> … {}</li>",
            *count as f64 * 100.0 / total.max(1) as f64,
            esc(root),
            esc(&leaf.join(" ← "))
        );
    }
    out.push_str("</ol>");
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1280px;padding:0 16px 32px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
.verdict{font-size:16px;background:#fff4e5;border-left:4px solid #f28e2b;padding:8px 12px}
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
