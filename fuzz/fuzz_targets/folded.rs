//! Folded stacks as `profiler flamegraph` reads them (its INPUT and `--diff` baselines), and as
//! `stacks.folded` writes them: parsing never panics, what the writer writes parses back to the
//! same stacks, and every parsed input draws a well-formed SVG, alone and as a differential
//! flamegraph against itself reversed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{
    MAX_TOTAL, Picture, ProcessStacks, merge, parse_folded, render_diff, render_folded,
    render_stacks,
};

fuzz_target!(|data: &[u8]| {
    // `profiler flamegraph` reads files lossily: a bad byte costs one frame its spelling.
    let text = String::from_utf8_lossy(data);
    writer_round_trips(&text, data.len() as u64);
    let Ok(stacks) = parse_folded(&text, "input.folded") else {
        return;
    };
    let total: u64 = stacks.iter().map(|(_, count)| count).sum();
    assert!(total <= MAX_TOTAL);
    for (stack, _) in &stacks {
        assert!(!stack.is_empty() && !stack.contains('\n'), "{stack:?}");
        assert_eq!(stack.trim(), stack, "stacks are trimmed");
    }
    // What the command re-emits for inferno reads back to the same stacks.
    let again: String = stacks
        .iter()
        .map(|(stack, count)| format!("{stack} {count}\n"))
        .collect();
    assert_eq!(parse_folded(&again, "again").unwrap(), stacks);

    let Ok(merged) = merge([stacks]) else {
        return;
    };
    if merged.is_empty() {
        return;
    }
    let picture = Picture {
        title: "fuzz".to_owned(),
        subtitle: None,
        count_name: "samples".to_owned(),
    };
    let svg = render_stacks(&picture, &merged).expect("parsed stacks always draw");
    well_formed(&svg);
    let base: Vec<(String, u64)> = merged.iter().rev().cloned().collect();
    let svg = render_diff(&picture, &base, &merged).expect("parsed stacks always compare");
    well_formed(&svg);
});

/// `stacks.folded` written for a process named by the input's first NUL-separated field, with
/// the other fields as frames, reads back as that process's one stack: `;` and control characters
/// in names cleaned, the space of a leading `# ` (a comment) written as a no-break space.
fn writer_round_trips(text: &str, count: u64) {
    let mut fields = text.split('\0');
    let comm = fields.next().unwrap_or_default();
    let frames: Vec<String> = fields.map(str::to_owned).collect();
    let stacks = [(frames.clone(), count)];
    let written = render_folded(&[ProcessStacks {
        comm,
        pid: 4242,
        stacks: &stacks,
    }]);
    let clean = |name: &str| -> String {
        name.chars()
            .map(|c| match c {
                ';' => ':',
                c if c.is_control() => char::REPLACEMENT_CHARACTER,
                c => c,
            })
            .collect()
    };
    let mut expected = clean(&format!("{comm} (4242)"));
    let lead = expected.len() - expected.trim_start().len();
    if expected[lead..].starts_with("# ") {
        expected.replace_range(lead + 1..lead + 2, "\u{a0}");
    }
    for frame in &frames {
        expected.push(';');
        expected.push_str(&clean(frame));
    }
    let parsed = parse_folded(&written, "stacks.folded")
        .unwrap_or_else(|err| panic!("written stacks do not parse back: {err}\n{written:?}"));
    assert_eq!(parsed, [(expected.trim().to_owned(), count)], "{written:?}");
}

/// XML a browser opens: roxmltree rejects what is not well-formed, control characters included.
fn well_formed(svg: &[u8]) {
    let svg = std::str::from_utf8(svg).expect("SVG is UTF-8");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    if let Err(err) = roxmltree::Document::parse_with_options(svg, options) {
        panic!("SVG is not well-formed XML: {err}");
    }
}
