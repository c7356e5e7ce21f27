//! Whole-screen rendering on ratatui's `TestBackend`: what a viewer would read on a terminal.

use std::time::Duration;

use ratatui::{Terminal, backend::TestBackend, buffer::Buffer, style::Modifier};

use super::{Screen, detail::Detail, draw, fixtures::report, rows::Column, state::UiState};

fn render(width: u16, height: u16, state: &UiState, detail: Option<&Detail>) -> Buffer {
    let report = report();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            draw(
                frame,
                &Screen {
                    report: Some(&report),
                    state,
                    detail,
                    interval: Duration::from_secs(1),
                },
            );
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

fn lines(buffer: &Buffer) -> Vec<String> {
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

/// The rows under the header line, by name, in display order.
fn names(lines: &[String]) -> Vec<String> {
    let header = lines.iter().position(|l| l.contains("NAME")).unwrap();
    lines[header + 1..]
        .iter()
        .filter_map(|l| {
            ["burner", "worker", "sleeper"]
                .into_iter()
                .find(|name| l.contains(name))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn verdict_on_top_and_one_row_per_process_busiest_first() {
    let screen = lines(&render(120, 12, &UiState::default(), None));
    assert!(
        screen[0].starts_with("burner (pid 4242) is eating"),
        "{screen:#?}"
    );
    assert!(
        screen[1].contains("host: CPU 65 % busy, pressure not measured (2 CPUs)"),
        "{screen:#?}"
    );
    assert!(screen[1].contains("4 processes"));
    let header = &screen[2];
    for title in [
        "PID",
        "NAME",
        "CPU▼",
        "WAIT ms/s",
        "SYSC/s",
        "READ/s",
        "TX/s",
        "RSS",
    ] {
        assert!(header.contains(title), "{title} missing from {header}");
    }
    assert_eq!(names(&screen), ["burner", "worker", "worker", "sleeper"]);
    assert!(screen[3].contains("4242") && screen[3].contains("0.98"));
    assert!(screen[3].contains("196"), "wait in ms/s: {}", screen[3]);
}

#[test]
fn sort_follows_the_state() {
    let state = UiState {
        sort: Column::Pid,
        descending: false,
        ..UiState::default()
    };
    let screen = lines(&render(120, 12, &state, None));
    assert_eq!(names(&screen), ["sleeper", "worker", "worker", "burner"]);
    assert!(screen[2].contains("PID▲"));
}

#[test]
fn suspects_are_marked_and_highlighted_with_or_without_color() {
    for color in [true, false] {
        let state = UiState {
            color,
            ..UiState::default()
        };
        let buffer = render(120, 12, &state, None);
        let screen = lines(&buffer);
        assert!(screen[3].starts_with('!'));
        assert!(!screen[4].starts_with('!'));
        // Column 10 is inside the burner's pid or name, not the selection highlight's reach
        // alone: the suspect style is bold in both palettes.
        let cell = &buffer[(10, 3)];
        assert!(cell.modifier.contains(Modifier::BOLD), "color {color}");
        let plain = &buffer[(10, 5)];
        assert!(!plain.modifier.contains(Modifier::BOLD));
        if !color {
            assert_eq!(
                cell.fg,
                ratatui::style::Color::Reset,
                "NO_COLOR means no colors"
            );
        }
    }
}

#[test]
fn narrow_terminals_drop_columns_but_keep_name_and_cpu() {
    let screen = lines(&render(40, 10, &UiState::default(), None));
    assert!(screen[2].contains("NAME") && screen[2].contains("CPU"));
    assert!(!screen[2].contains("RSS") && !screen[2].contains("TX/s"));
    assert_eq!(names(&screen)[0], "burner");
}

#[test]
fn help_overlay_lists_the_keys() {
    let state = UiState {
        help: true,
        ..UiState::default()
    };
    let text = lines(&render(100, 24, &state, None)).join("\n");
    assert!(text.contains("profiler top: keys"));
    assert!(text.contains("filter by name"));
    assert!(text.contains("quit"));
}

#[test]
fn filter_keeps_matching_rows_and_shows_the_prompt() {
    let state = UiState {
        filter: "work".to_owned(),
        editing_filter: true,
        ..UiState::default()
    };
    let screen = lines(&render(120, 12, &state, None));
    assert_eq!(names(&screen), ["worker", "worker"]);
    assert!(screen[1].contains("filter \"work\""));
    assert!(screen[11].starts_with("/work_"));
}

#[test]
fn grouping_by_comm_shows_apps() {
    let state = UiState {
        grouping: super::rows::Grouping::Comm,
        ..UiState::default()
    };
    let screen = lines(&render(120, 12, &state, None));
    assert!(screen[2].contains("PROCS"));
    assert!(screen[1].contains("3 apps by comm"), "{}", screen[1]);
    assert_eq!(names(&screen), ["burner", "worker", "sleeper"]);
}

#[test]
fn detail_shows_stack_shares_and_blame() {
    let detail = Detail {
        pid: 4242,
        comm: "burner".to_owned(),
        stacks: vec![
            (vec!["main".to_owned(), "burner_inner_gamma".to_owned()], 3),
            (vec!["main".to_owned(), "other".to_owned()], 1),
        ],
        delayed_by: Vec::new(),
        delays: vec![super::detail::BlameLine {
            pid: 300,
            comm: "worker".to_owned(),
            delay_ns: 80_000_000,
        }],
        time: None,
    };
    let state = UiState {
        detail: Some(4242),
        ..UiState::default()
    };
    let text = lines(&render(100, 20, &state, Some(&detail))).join("\n");
    assert!(text.contains("burner (pid 4242): hottest stacks"), "{text}");
    assert!(text.contains("75.0%  burner_inner_gamma ← main"), "{text}");
    assert!(text.contains("80.0ms  worker (pid 300)"), "{text}");
    assert!(text.contains("nobody measured"));
    assert!(text.contains("last tick: it did not run"), "{text}");
}

#[test]
fn detail_shows_its_time_last_tick_in_its_words() {
    let mut tick = report();
    tick.blame = vec![crate::alerts::fixtures::blame(
        (300, "worker"),
        (4242, "burner"),
        400_000_000,
    )];
    let time = crate::analyze::victim::all(
        &tick,
        &[crate::analyze::victim::VictimSpec::Pid(
            tick.processes[0].pid,
        )],
    )
    .into_iter()
    .next();
    assert!(time.is_some(), "the fixture's first process ran");
    let detail = Detail {
        pid: tick.processes[0].pid,
        comm: tick.processes[0].comm.clone(),
        time,
        ..Detail::default()
    };
    let state = UiState {
        detail: Some(detail.pid),
        ..UiState::default()
    };
    let text = lines(&render(120, 24, &state, Some(&detail))).join("\n");
    assert!(text.contains("last tick: on a CPU "), "{text}");
    assert!(
        text.contains(&format!("{} (pid {}) was ", detail.comm, detail.pid)),
        "{text}"
    );
}

#[test]
fn the_status_says_how_busy_and_how_stalled_the_host_was() {
    let mut report = report();
    report.host.pressure = Some(crate::report::HostPressure {
        cpu_some_percent: 30.0,
        ..crate::report::HostPressure::default()
    });
    let text = super::plain::render(&report);
    assert!(
        text.contains("host: CPU 65 % busy; tasks stalled for a CPU 30 % of the time (2 CPUs)"),
        "{text}"
    );
}
