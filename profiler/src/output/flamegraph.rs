//! Flamegraphs (`flamegraph.svg`, `offcpu.svg`) rendered by inferno from folded stacks: one
//! tower per process; and `profiler flamegraph`'s pictures of parsed stacks, differential ones
//! included.

use std::fmt::Write as _;

use anyhow::Context as _;
use inferno::{
    differential,
    flamegraph::{self, Options},
};

/// What a flamegraph shows: its title and the unit of the folded counts.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub title: &'static str,
    pub count_name: &'static str,
}

pub const CPU: Kind = Kind {
    title: "profiler diagnose: where the CPU went",
    count_name: "samples",
};

pub const OFFCPU: Kind = Kind {
    title: "profiler diagnose: where processes blocked (off-CPU)",
    count_name: "us",
};

pub fn render(folded: &str, subtitle: &str) -> anyhow::Result<Vec<u8>> {
    render_kind(CPU, folded, subtitle)
}

pub fn render_kind(kind: Kind, folded: &str, subtitle: &str) -> anyhow::Result<Vec<u8>> {
    let mut options = Options::default();
    options.title = kind.title.to_owned();
    options.subtitle = Some(subtitle.to_owned());
    options.count_name = kind.count_name.to_owned();
    let mut svg = Vec::new();
    if folded.is_empty() {
        // inferno refuses empty input; an empty run still gets a valid, explicit picture.
        options.subtitle = Some(format!("{subtitle} (no samples)"));
        flamegraph::from_lines(&mut options, ["[no samples] 1"], &mut svg)
    } else {
        flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
    }
    .context("rendering a flamegraph")?;
    Ok(svg)
}

/// Title, subtitle and count unit of a `profiler flamegraph` picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub title: String,
    pub subtitle: Option<String>,
    pub count_name: String,
}

impl Picture {
    fn options(&self) -> Options<'static> {
        let mut options = Options::default();
        options.title.clone_from(&self.title);
        options.subtitle.clone_from(&self.subtitle);
        options.count_name.clone_from(&self.count_name);
        options
    }
}

/// Draws parsed folded stacks (`folded::parse`, at most `folded::MAX_TOTAL` in all, some count
/// above zero).
pub fn render_stacks(picture: &Picture, stacks: &[(String, u64)]) -> anyhow::Result<Vec<u8>> {
    let folded = to_folded(stacks, true);
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut picture.options(), folded.lines(), &mut svg)
        .context("rendering a flamegraph")?;
    Ok(svg)
}

/// The share of the input's total the baseline's total is scaled to before they are compared.
pub fn normalization(base: &[(String, u64)], input: &[(String, u64)]) -> f64 {
    let sum = |stacks: &[(String, u64)]| stacks.iter().map(|(_, count)| *count as f64).sum::<f64>();
    sum(input) / sum(base)
}

/// Draws `input` with each frame colored by how its own samples (those where it is the leaf)
/// changed from `base`: red where `input` has more, blue where it has less, the more saturated
/// the larger the change; callers of a changed frame stay neutral. The baseline's counts are
/// first scaled to the input's total (inferno's `normalize`), so a baseline taken over a longer
/// or busier run compares by share of the whole, not by raw count. Both sides as for
/// `render_stacks`.
pub fn render_diff(
    picture: &Picture,
    base: &[(String, u64)],
    input: &[(String, u64)],
) -> anyhow::Result<Vec<u8>> {
    let mut diff = Vec::new();
    differential::from_readers(
        differential::Options {
            normalize: true,
            strip_hex: false,
        },
        to_folded(base, false).as_bytes(),
        to_folded(input, false).as_bytes(),
        &mut diff,
    )
    .context("comparing the stacks with the baseline")?;
    let diff = String::from_utf8(diff).context("inferno's differential output")?;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut picture.options(), diff.lines(), &mut svg)
        .context("rendering a differential flamegraph")?;
    Ok(svg)
}

/// Folded text inferno cannot misread. Control characters would make the SVG invalid XML. A
/// stack whose last frame ends in ` <number>` (`Thread 2`) would pass for a differential line's
/// first count when a line has only one, so that space becomes a no-break space (`single`).
fn to_folded(stacks: &[(String, u64)], single: bool) -> String {
    let mut out = String::new();
    for (stack, count) in stacks {
        let mut stack: String = stack
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        if single
            && let Some(space) = stack.rfind(' ')
            && stack[space + 1..].starts_with(|c: char| c.is_ascii_digit())
            && stack[space + 1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
        {
            stack.replace_range(space..=space, "\u{a0}");
        }
        let _ = writeln!(out, "{stack} {count}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_names_frames() {
        let svg = render("burner (1);main;burner_inner_gamma 5\n", "t").unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("burner_inner_gamma"));
        assert!(svg.contains("burner (1)"));
    }

    #[test]
    fn empty_profile_still_renders() {
        assert!(!render("", "t").unwrap().is_empty());
    }

    fn picture() -> Picture {
        Picture {
            title: "t".to_owned(),
            subtitle: None,
            count_name: "samples".to_owned(),
        }
    }

    fn stacks(lines: &[(&str, u64)]) -> Vec<(String, u64)> {
        lines.iter().map(|&(s, n)| (s.to_owned(), n)).collect()
    }

    /// The `fill` of the rectangle whose tooltip starts with `frame`.
    fn fill_of<'a>(svg: &'a str, frame: &str) -> &'a str {
        let at = svg
            .find(&format!("<title>{frame} ("))
            .unwrap_or_else(|| panic!("no {frame} in {svg}"));
        let fill = &svg[at..];
        let fill = &fill[fill.find("fill=\"").unwrap() + 6..];
        &fill[..fill.find('"').unwrap()]
    }

    #[test]
    fn diff_is_red_where_the_input_grew_and_blue_where_it_shrank() {
        let base = stacks(&[("app;steady", 50), ("app;cooled", 50)]);
        let input = stacks(&[("app;steady", 50), ("app;hot", 40), ("app;cooled", 10)]);
        let svg = String::from_utf8(render_diff(&picture(), &base, &input).unwrap()).unwrap();
        assert_eq!(fill_of(&svg, "hot"), "rgb(255,100,100)");
        assert!(fill_of(&svg, "cooled").ends_with(",255)"), "{svg}");
        assert_eq!(fill_of(&svg, "steady"), "rgb(250,250,250)");
    }

    #[test]
    fn a_longer_baseline_is_scaled_down_rather_than_drawn_blue() {
        // Same shape, ten times the samples: no change at all once normalized.
        let base = stacks(&[("app;a", 300), ("app;b", 100)]);
        let input = stacks(&[("app;a", 30), ("app;b", 10)]);
        assert!((normalization(&base, &input) - 0.1).abs() < 1e-9);
        let svg = String::from_utf8(render_diff(&picture(), &base, &input).unwrap()).unwrap();
        assert_eq!(fill_of(&svg, "a"), "rgb(250,250,250)");
        assert_eq!(fill_of(&svg, "b"), "rgb(250,250,250)");
    }

    #[test]
    fn odd_stacks_and_counts_at_the_limit_render_without_overflow() {
        let odd = stacks(&[
            (";", 1),
            ("a;;b", 2),
            ("-;--", 3),
            ("#x;y 1.5", 4),
            ("a;x 12", 5),
            ("\u{a0};\u{fffd}", 6),
        ]);
        render_stacks(&picture(), &odd).unwrap();
        render_diff(&picture(), &odd, &odd[1..]).unwrap();
        let huge = stacks(&[("a;b", crate::output::folded::MAX_TOTAL - 1), ("a;c", 1)]);
        let small = stacks(&[("a;c", 1)]);
        render_stacks(&picture(), &huge).unwrap();
        render_diff(&picture(), &huge, &small).unwrap();
        render_diff(&picture(), &small, &huge).unwrap();
    }

    #[test]
    fn frames_that_look_like_counts_or_hold_control_characters_stay_frames() {
        let input = stacks(&[("main;Thread 2", 5), ("main;bell\u{7}", 1)]);
        let svg = render_stacks(&picture(), &input).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("Thread\u{a0}2 (5 samples"), "{svg}");
        assert!(svg.contains("bell\u{fffd}"), "{svg}");
        assert!(!svg.contains('\u{7}'));
    }
}
