//! Inline SVG plots of the report's timeline: CPU stacked per process, and run-queue wait.

use std::fmt::Write as _;

use maud::{Markup, html};

use super::Text;
use crate::report::{Series, Timeline};

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 60.0;
const TOP: f64 = 15.0;
const BOTTOM: f64 = 40.0;
/// Plot area width; the legend takes the rest.
const PLOT_WIDTH: f64 = 780.0;
const LEGEND_NAME_CHARS: usize = 28;

/// Colour-blind-friendly (Tableau 10).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// One band per process, stacked, busiest at the bottom: the `top` that used the most CPU.
pub fn cpu_stacked(timeline: &Timeline, duration_s: f64, top: usize) -> String {
    let chosen = ranked(timeline, |s| &s.cpu_cores, top);
    if chosen.is_empty() {
        return "<p class=\"empty\">No CPU timeline was collected.</p>".to_owned();
    }
    let frame = Frame::new(timeline, duration_s);
    let n = timeline.start_offsets_s.len();
    let mut base = vec![0.0; n];
    let mut tops = Vec::with_capacity(chosen.len());
    for series in &chosen {
        let top: Vec<f64> = base
            .iter()
            .zip(&series.cpu_cores)
            .map(|(b, v)| b + v)
            .collect();
        tops.push((base.clone(), top.clone()));
        base = top;
    }
    let y_max = nice_ceiling(base.iter().copied().fold(0.0, f64::max));
    let outlines = tops.iter().map(|(lower, upper)| {
        let mut d = String::new();
        for (j, &value) in upper.iter().enumerate() {
            let (x0, x1) = frame.span(j);
            let y = frame.y(value, y_max);
            let _ = write!(
                d,
                "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ",
                if j == 0 { "M" } else { "L" }
            );
        }
        for (j, &value) in lower.iter().enumerate().rev() {
            let (x0, x1) = frame.span(j);
            let y = frame.y(value, y_max);
            let _ = write!(d, "L{x1:.1},{y:.1} L{x0:.1},{y:.1} ");
        }
        d.push('Z');
        d
    });
    let bands = html! {
        @for (i, (series, d)) in chosen.iter().zip(outlines).enumerate() {
            path class="band" data-pid=(series.pid) fill=(PALETTE[i % PALETTE.len()]) d=(d) {
                title { (Text(label(series))) }
            }
        }
        (legend(&chosen))
    };
    frame
        .svg("CPU per process, stacked", "cores", y_max, bands)
        .into_string()
}

/// One line per process: the `top` that waited longest for a CPU (the victims).
pub fn runq_wait_lines(timeline: &Timeline, duration_s: f64, top: usize) -> String {
    let chosen = ranked(timeline, |s| &s.runq_wait_ratio, top);
    if chosen.is_empty() {
        return "<p class=\"empty\">No process waited for a CPU (or the sched signal was off).</p>"
            .to_owned();
    }
    let frame = Frame::new(timeline, duration_s);
    let highest = chosen
        .iter()
        .flat_map(|s| s.runq_wait_ratio.iter().copied())
        .fold(0.0, f64::max);
    let y_max = nice_ceiling(highest);
    let points = chosen.iter().map(|series| {
        let mut points = String::new();
        for (j, &value) in series.runq_wait_ratio.iter().enumerate() {
            let (x0, x1) = frame.span(j);
            let y = frame.y(value, y_max);
            let _ = write!(points, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
        }
        points.trim_end().to_owned()
    });
    let lines = html! {
        @for (i, (series, points)) in chosen.iter().zip(points).enumerate() {
            polyline class="line" data-pid=(series.pid) fill="none"
                stroke=(PALETTE[i % PALETTE.len()]) stroke-width="2" points=(points) {
                title { (Text(label(series))) }
            }
        }
        (legend(&chosen))
    };
    frame
        .svg(
            "Run-queue wait per second (1.0 = one thread waiting all the time)",
            "wait ratio",
            y_max,
            lines,
        )
        .into_string()
}

/// The `top` series with the largest sum of `values`, largest first; all-zero ones left out.
fn ranked(timeline: &Timeline, values: fn(&Series) -> &Vec<f64>, top: usize) -> Vec<&Series> {
    let mut ranked: Vec<(&Series, f64)> = timeline
        .series
        .iter()
        .map(|s| (s, values(s).iter().sum::<f64>()))
        .filter(|&(s, sum)| sum > 0.0 && values(s).len() == timeline.start_offsets_s.len())
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    ranked.into_iter().take(top).map(|(s, _)| s).collect()
}

fn label(series: &Series) -> String {
    format!("{} ({})", series.comm, series.pid)
}

/// The label cut to `LEGEND_NAME_CHARS`, with an ellipsis when cut.
fn short_label(series: &Series) -> String {
    let full = label(series);
    let mut name: String = full.chars().take(LEGEND_NAME_CHARS).collect();
    if name.chars().count() < full.chars().count() {
        name.push('…');
    }
    name
}

fn legend(chosen: &[&Series]) -> Markup {
    let x = LEFT + PLOT_WIDTH + 20.0;
    html! {
        @for (i, series) in chosen.iter().enumerate() {
            @let y = TOP + 4.0 + 20.0 * i as f64;
            rect x=(x) y=(y) width="12" height="12" fill=(PALETTE[i % PALETTE.len()]) {}
            text class="legend" x=(x + 18.0) y=(y + 11.0) { (Text(short_label(series))) }
        }
    }
}

/// Where buckets land on the x axis.
struct Frame<'a> {
    offsets: &'a [f64],
    end_s: f64,
    interval_s: f64,
}

impl<'a> Frame<'a> {
    fn new(timeline: &'a Timeline, duration_s: f64) -> Self {
        let last = timeline.start_offsets_s.last().copied().unwrap_or(0.0);
        let interval_s = if timeline.interval_s > 0.0 {
            timeline.interval_s
        } else {
            1.0
        };
        Self {
            offsets: &timeline.start_offsets_s,
            end_s: if duration_s > last {
                duration_s
            } else {
                last + interval_s
            },
            interval_s,
        }
    }

    fn x(&self, seconds: f64) -> f64 {
        LEFT + seconds / self.end_s * PLOT_WIDTH
    }

    fn y(&self, value: f64, y_max: f64) -> f64 {
        let plot_height = HEIGHT - TOP - BOTTOM;
        TOP + plot_height - value / y_max * plot_height
    }

    /// Left and right x of bucket `i`.
    fn span(&self, i: usize) -> (f64, f64) {
        let start = self.offsets[i];
        let end = self
            .offsets
            .get(i + 1)
            .copied()
            .unwrap_or(self.end_s.min(start + self.interval_s).max(start));
        (self.x(start), self.x(end))
    }

    /// The `<svg>` element: both axes, their ticks and labels, then `content`.
    fn svg(&self, title: &str, y_label: &str, y_max: f64, content: Markup) -> Markup {
        let bottom = HEIGHT - BOTTOM;
        let right = LEFT + PLOT_WIDTH;
        let y_ticks = (0..=4).map(|i| {
            let value = y_max * f64::from(i) / 4.0;
            (self.y(value, y_max), trim_number(value))
        });
        let step = nice_ceiling(self.end_s / 6.0).max(f64::MIN_POSITIVE);
        let x_ticks = std::iter::successors(Some(0.0), |t| Some(t + step))
            .take_while(|&t| t <= self.end_s + 1e-9)
            .map(|t| (self.x(t), trim_number(t)));
        let middle = TOP + (bottom - TOP) / 2.0;
        html! {
            svg class="plot" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH)
                height=(HEIGHT) role="img" aria-label=(title) {
                line class="axis" x1=(LEFT) y1=(bottom) x2=(right) y2=(bottom) {}
                line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
                @for (y, value) in y_ticks {
                    line class="grid" x1=(LEFT) y1=(format!("{y:.1}")) x2=(right)
                        y2=(format!("{y:.1}")) {}
                    text class="tick" x=(LEFT - 6.0) y=(format!("{:.1}", y + 4.0))
                        text-anchor="end" { (value) }
                }
                @for (x, value) in x_ticks {
                    @let x = format!("{x:.1}");
                    line class="axis" x1=(x) y1=(bottom) x2=(x) y2=(bottom + 5.0) {}
                    text class="tick" x=(x) y=(bottom + 18.0) text-anchor="middle" { (value) }
                }
                text class="axis-label" x=(LEFT + PLOT_WIDTH / 2.0) y=(HEIGHT - 4.0)
                    text-anchor="middle" { "seconds" }
                text class="axis-label" x="14" y=(middle) text-anchor="middle"
                    transform=(format!("rotate(-90 14 {middle})")) { (y_label) }
                (content)
            }
        }
    }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `x` (1 for nothing at all).
fn nice_ceiling(x: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&v| v >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

fn trim_number(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pid: u32, comm: &str, cpu: &[f64], wait: &[f64]) -> Series {
        Series {
            pid,
            comm: comm.to_owned(),
            cpu_cores: cpu.to_vec(),
            runq_wait_ratio: wait.to_vec(),
        }
    }

    fn timeline() -> Timeline {
        Timeline {
            interval_s: 1.0,
            start_offsets_s: vec![0.0, 1.0, 2.0],
            series: vec![
                series(1, "burner", &[1.0, 1.0, 0.9], &[0.0, 0.0, 0.0]),
                series(2, "<script>x", &[0.2, 0.1, 0.0], &[0.3, 0.5, 0.1]),
                series(3, "idle", &[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0]),
            ],
        }
    }

    #[test]
    fn stacked_plot_has_a_band_per_busy_series_and_escapes_names() {
        let svg = cpu_stacked(&timeline(), 3.0, 10);
        assert_eq!(svg.matches("<path class=\"band\"").count(), 2, "{svg}");
        assert!(svg.contains("data-pid=\"1\"") && svg.contains("data-pid=\"2\""));
        assert!(!svg.contains("data-pid=\"3\""));
        assert!(svg.contains("&lt;script&gt;x (2)"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn wait_plot_draws_only_processes_that_waited() {
        let svg = runq_wait_lines(&timeline(), 3.0, 5);
        assert_eq!(svg.matches("<polyline class=\"line\"").count(), 1, "{svg}");
        assert!(svg.contains("data-pid=\"2\""));
        assert!(runq_wait_lines(&Timeline::default(), 3.0, 5).contains("empty"));
    }

    #[test]
    fn axis_bounds_are_round() {
        assert_eq!(nice_ceiling(1.9), 2.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(trim_number(0.5), "0.5");
        assert_eq!(trim_number(2.0), "2");
    }
}
