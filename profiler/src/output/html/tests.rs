//! The page on its own: escaping of untrusted names, sortable tables, plots, nothing external.

use super::*;
use crate::{
    alerts::fixtures,
    output::flamegraph,
    report::{Confidence, Series, Suspect, Timeline},
};

const EVIL: &str = "<script>alert(1)</script>";

fn report() -> Report {
    let mut report = fixtures::report(3.0);
    let mut evil = fixtures::process(66, EVIL, 0.5);
    evil.cmdline = vec![EVIL.to_owned(), "\"quoted\" & 'single'".to_owned()];
    report.processes = vec![fixtures::process(10, "burner", 1.0), evil];
    report.suspects = vec![Suspect {
        rank: 1,
        pid: 66,
        comm: EVIL.to_owned(),
        resource: crate::report::Resource::Cpu,
        value: 0.5,
        unit: crate::report::Unit::Cores,
        reason: format!("{EVIL} used 0.50 cores"),
        confidence: Confidence::Likely,
        app: None,
    }];
    report.verdict = format!("Suspect #1: {EVIL}");
    report.timeline = Timeline {
        interval_s: 1.0,
        start_offsets_s: vec![0.0, 1.0, 2.0],
        series: vec![
            Series {
                pid: 10,
                comm: "burner".to_owned(),
                cpu_cores: vec![1.0, 1.0, 1.0],
                runq_wait_ratio: vec![0.0, 0.1, 0.0],
            },
            Series {
                pid: 66,
                comm: EVIL.to_owned(),
                cpu_cores: vec![0.5, 0.4, 0.6],
                runq_wait_ratio: vec![0.2, 0.3, 0.1],
            },
        ],
    };
    report
}

fn page() -> String {
    let folded = format!("burner (10);main;burner_inner_gamma 40\n{EVIL} (66);main;{EVIL} 3\n");
    let svg = flamegraph::render(&folded, "t").unwrap();
    render(&report(), &folded, &svg, Some(&svg))
}

#[test]
fn untrusted_names_are_escaped_everywhere() {
    let page = page();
    assert!(!page.contains(EVIL), "raw {EVIL} in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Inside the flamegraph's srcdoc attribute, inferno's own escaping is escaped once more.
    assert!(page.contains("&amp;lt;script&amp;gt;alert(1)"));
    assert!(page.contains("&quot;quoted&quot; &amp; &#39;single&#39;"));
    assert_eq!(Text("a\u{1}b").render().into_string(), "a\u{fffd}b");
}

#[test]
fn a_name_that_closes_the_script_stays_text() {
    let hostile = "</script><script>alert(1)</script>";
    let mut report = report();
    report.processes[1].comm = hostile.to_owned();
    report.suspects[0].comm = hostile.to_owned();
    report.timeline.series[1].comm = hostile.to_owned();
    let folded = format!("{hostile} (66);main;{hostile} 3\n");
    let svg = flamegraph::render(&folded, "t").unwrap();
    let page = render(&report, &folded, &svg, Some(&svg));
    assert!(!page.contains(hostile), "raw {hostile} in the page");
    assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Our own script is the only one, and it closes once.
    assert_eq!(page.matches("<script>").count(), 1);
    assert_eq!(page.matches("</script>").count(), 1);
}

#[test]
fn only_the_page_script_and_the_flamegraph_scripts_run() {
    let page = page();
    // The page's sorter; the flamegraphs' scripts and shims sit escaped in srcdoc attributes.
    assert_eq!(page.matches("<script>").count(), 1);
    assert_eq!(page.matches("<iframe class=\"flamegraph\"").count(), 2);
}

#[test]
fn nothing_is_fetched_from_the_network() {
    let page = page();
    for (at, _) in page.match_indices("://") {
        let before = &page[..at];
        let scheme_at = before
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        let scheme = &before[scheme_at..];
        let attribute = &before[..scheme_at];
        assert!(
            !scheme.starts_with("http")
                || attribute.ends_with("xmlns=&quot;")
                || attribute.rsplit_once("xmlns:").is_some_and(|(_, name)| {
                    name.trim_end_matches("=&quot;")
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric())
                }),
            "external URL at {at}: {}",
            &page[scheme_at.saturating_sub(40)..(at + 40).min(page.len())]
        );
    }
    assert!(!page.contains("<link") && !page.contains(" src=\""));
}

#[test]
fn tables_carry_sort_values() {
    let page = page();
    assert!(page.contains("<table class=\"sortable\" id=\"cpu\">"));
    assert!(page.contains("<th data-type=\"num\" title=\"click to sort\">cores</th>"));
    assert!(page.contains("<td class=\"n\" data-value=\"1\">1.000</td>"));
    assert!(page.contains("data-value=\"burner\">burner</td>"));
}

#[test]
fn timeline_plots_have_a_band_or_line_per_series() {
    let page = page();
    assert_eq!(page.matches("<path class=\"band\"").count(), 2);
    assert_eq!(page.matches("<polyline class=\"line\"").count(), 2);
    let empty = render(
        &fixtures::report(3.0),
        "",
        b"<svg height=\"10\"></svg>",
        None,
    );
    assert!(empty.contains("No CPU timeline was collected"));
    assert!(!empty.contains("offcpu-flamegraph"));
}

#[test]
fn flamegraph_frames_and_height_reach_the_page() {
    let page = page();
    assert!(page.contains("burner_inner_gamma"));
    assert!(page.contains("40 samples (93.0 %)"));
    assert_eq!(svg_height("<svg width=\"1\" height=\"246\">"), Some(246.0));
    assert_eq!(without_comments("a<!-- x -->b<!--y-->c<!-- open"), "abc");
    assert_eq!(
        without_urls("<svg><script>a\n  // see https://x\nf(\"at https://y\")</script></svg>"),
        "<svg><script>a\nf(\"at https:\\/\\/y\")</script></svg>"
    );
}

#[test]
fn only_nonzero_drops_are_listed() {
    let mut report = report();
    assert!(cost_and_drops(&report).contains("Nothing was dropped"));
    report.drops.io_map_full = 3;
    let shown = cost_and_drops(&report);
    assert!(shown.contains("<dt>io_map_full</dt><dd>3</dd>"));
    assert!(!shown.contains("net_map_full"));
}

#[test]
fn element_ids_are_unique() {
    let page = page();
    let ids: Vec<&str> = page
        .split(" id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
}
