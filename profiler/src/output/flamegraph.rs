//! Flamegraphs (`flamegraph.svg`, `offcpu.svg`) rendered by inferno from folded stacks: one
//! tower per process.

use anyhow::Context as _;
use inferno::flamegraph::{self, Options};

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
}
