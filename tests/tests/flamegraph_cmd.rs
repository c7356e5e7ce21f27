//! End-to-end `profiler flamegraph`: a differential flamegraph of an incident (a CPU hog running)
//! against an idle baseline draws the hog's frames red; a report directory renders on its own;
//! a corrupt folded file is one error line with its line number and no SVG; `--from` merges
//! only the record windows inside `--since`.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use profiler_tests::{
    Finished, ProfilerRun, REPORT_GRACE, Workload, diagnose, folded_lines_of, frames_in_order,
    profiler_command, require_built, require_root, serial, tempdir, utf8,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

const INNER: &str = "burner_inner_gamma";
const MIDDLE: &str = "burner_middle_beta";
const OUTER: &str = "burner_outer_alpha";

/// Rendering is offline and quick; this only bounds a hang.
const RENDER_TIMEOUT: Duration = Duration::from_secs(60);

fn flamegraph(args: &[&str], cwd: &Path) -> Finished {
    let mut command = profiler_command();
    command.arg("flamegraph").args(args).current_dir(cwd);
    ProfilerRun::start(command).finish(RENDER_TIMEOUT)
}

/// One frame of an inferno SVG: `<g><title>..</title><rect .. fill=".." fg:x=".." fg:w=".."/>`.
#[derive(Debug)]
struct Frame {
    title: String,
    fill: String,
    x: u64,
    width: u64,
}

fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

fn frames(svg: &str) -> Vec<Frame> {
    svg.split("<g><title>")
        .skip(1)
        .filter_map(|group| {
            let (title, rest) = group.split_once("</title>")?;
            let rect = &rest[..rest.find("/>")?];
            Some(Frame {
                title: title.to_owned(),
                fill: attribute(rect, "fill")?.to_owned(),
                x: attribute(rect, "fg:x")?.parse().ok()?,
                width: attribute(rect, "fg:w")?.parse().ok()?,
            })
        })
        .collect()
}

/// The frames of the tower rooted at `root` (`comm (pid)`), the root included.
fn tower<'a>(frames: &'a [Frame], root: &str) -> Vec<&'a Frame> {
    let Some(base) = frames
        .iter()
        .find(|frame| frame.title.starts_with(&format!("{root} (")))
    else {
        return Vec::new();
    };
    frames
        .iter()
        .filter(|frame| frame.x >= base.x && frame.x + frame.width <= base.x + base.width)
        .filter(|frame| !frame.title.starts_with("all ("))
        .collect()
}

/// `rgb(r,g,b)` components of a fill.
fn rgb(fill: &str) -> Option<(u8, u8, u8)> {
    let inner = fill.strip_prefix("rgb(")?.strip_suffix(')')?;
    let mut parts = inner.split(',').map(|part| part.trim().parse::<u8>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// inferno's differential scale: more samples than the baseline is `rgb(255,c,c)`, fewer is
/// `rgb(c,c,255)`, with `c` 100 for the largest change up to 250 for none.
fn is_red(fill: &str) -> bool {
    rgb(fill).is_some_and(|(r, g, b)| r == 255 && g == b && g < 250)
}

fn is_blue(fill: &str) -> bool {
    rgb(fill).is_some_and(|(r, g, b)| b == 255 && r == g && r < 250)
}

#[test]
fn diff_against_an_idle_baseline_draws_the_hog_red() {
    if !require_root("diff_against_an_idle_baseline_draws_the_hog_red") {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let base = dir.path().join("baseline");
    let incident = dir.path().join("incident");
    diagnose(
        &["--duration", "2s", "--out", utf8(&base)],
        dir.path(),
        REPORT_GRACE,
    )
    .assert_success();
    let burner = Workload::spawn(BURNER, &[]);
    diagnose(
        &["--duration", "2s", "--out", utf8(&incident)],
        dir.path(),
        REPORT_GRACE,
    )
    .assert_success();
    let root = format!("burner ({})", burner.pid());
    drop(burner);
    let folded = fs::read_to_string(incident.join("stacks.folded")).expect("stacks.folded");
    assert!(
        folded_lines_of(&folded, &root)
            .iter()
            .any(|line| frames_in_order(line, &[OUTER, MIDDLE, INNER])),
        "the incident's stacks.folded has no {root} stack through {OUTER} -> {MIDDLE} -> {INNER}"
    );

    let out = dir.path().join("diff.svg");
    let done = flamegraph(
        &[utf8(&incident), "--diff", utf8(&base), "--out", utf8(&out)],
        dir.path(),
    );
    done.assert_success();
    assert!(done.stdout.is_empty(), "stdout with --out: {}", done.stdout);
    let svg = fs::read_to_string(&out).expect("reading diff.svg");
    assert!(
        svg.starts_with("<?xml"),
        "not an SVG: {}",
        &svg[..100.min(svg.len())]
    );
    assert!(
        svg.contains(&format!(
            "profiler flamegraph: {} vs {}",
            incident.display(),
            base.display()
        )),
        "default title missing"
    );
    let all = frames(&svg);
    let hog = tower(&all, &root);
    let summary: Vec<String> = hog
        .iter()
        .map(|frame| format!("{} {}", frame.fill, frame.title))
        .collect();
    // Captured by libtest: shown on failure or with --nocapture, to see the colors drawn.
    eprintln!("{root} in diff.svg:\n{}", summary.join("\n"));
    let inner: Vec<&&Frame> = hog
        .iter()
        .filter(|frame| frame.title.contains(INNER))
        .collect();
    assert!(
        !inner.is_empty(),
        "diff.svg has no {INNER} frame under {root}:\n{}",
        summary.join("\n")
    );
    // Differential colors show each frame's own samples (those where it is the leaf): the hot
    // leaf is red, its callers keep the neutral color unless they were sampled themselves.
    assert!(
        inner.iter().any(|frame| is_red(&frame.fill)),
        "{INNER} is not drawn red though the baseline never ran the burner:\n{}",
        summary.join("\n")
    );
    assert!(
        hog.iter().all(|frame| !is_blue(&frame.fill)),
        "a frame of the burner is drawn blue (less than the baseline):\n{}",
        summary.join("\n")
    );

    let plain = flamegraph(&[utf8(&incident)], dir.path());
    plain.assert_success();
    assert!(plain.stdout.starts_with("<?xml"), "no SVG on stdout");
    assert!(
        plain.stdout.contains(INNER),
        "the SVG on stdout lacks {INNER}"
    );
    assert!(
        plain.stdout.contains(&root),
        "the SVG on stdout lacks {root}"
    );
    // Differential tooltips end `P%; +D%)`.
    assert!(
        !plain.stdout.contains("%; "),
        "a flamegraph without --diff shows differences"
    );
}

#[test]
fn corrupt_folded_input_names_its_line_and_writes_nothing() {
    if !require_built("corrupt_folded_input_names_its_line_and_writes_nothing") {
        return;
    }
    let dir = tempdir();
    // Cut off mid-frame, as a copy interrupted or a disk filled up would leave it.
    let bad = dir.path().join("stacks.folded");
    fs::write(
        &bad,
        "burner (7);main;burner_outer_alpha 30\r\nburner (7);main 2\r\nburner (7);main;burner_ou",
    )
    .unwrap();
    let out = dir.path().join("g.svg");
    let done = flamegraph(&[utf8(&bad), "--out", utf8(&out)], dir.path());
    let line = done.error_line();
    assert!(
        line.contains("stacks.folded:3: expected \"<frames> <count>\""),
        "error does not name line 3: {line}"
    );
    assert!(done.stdout.is_empty(), "stdout: {}", done.stdout);
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["stacks.folded"], "files left beside the input");

    let empty = dir.path().join("empty.folded");
    fs::write(&empty, "\n\n").unwrap();
    let line = flamegraph(&[utf8(&empty)], dir.path())
        .error_line()
        .to_owned();
    assert!(line.contains("no stacks in"), "{line}");
}

/// RFC 3339 (UTC, whole seconds) for `time`: civil-from-days, as the test crate has no date
/// library.
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (days, of_day) = (
        i64::try_from(secs / 86_400).expect("days fit"),
        secs % 86_400,
    );
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// A window directory as `profiler record` leaves it, reduced to what selection reads and the
/// recorder's marker.
fn window(root: &Path, name: &str, started_ago: Duration, duration_s: f64, folded: &str) {
    let dir = root.join(name);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(".profiler-window"), "").unwrap();
    let started = rfc3339(SystemTime::now() - started_ago);
    fs::write(
        dir.join("report.json"),
        format!(r#"{{"started_at": "{started}", "duration_s": {duration_s}}}"#),
    )
    .unwrap();
    fs::write(dir.join("stacks.folded"), folded).unwrap();
}

#[test]
fn from_merges_only_the_windows_since() {
    if !require_built("from_merges_only_the_windows_since") {
        return;
    }
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723)),
        "2000-02-29T01:02:03Z"
    );
    let dir = tempdir();
    let record = dir.path().join("record");
    fs::create_dir(&record).unwrap();
    let minute = Duration::from_secs(60);
    window(
        &record,
        "w-old",
        60 * minute,
        60.0,
        "old (1);main;only_in_old 50\n",
    );
    window(
        &record,
        "w-a",
        3 * minute,
        60.0,
        "app (2);main;only_in_new 7\n",
    );
    window(
        &record,
        "w-b",
        2 * minute,
        60.0,
        "app (2);main;only_in_new 3\n",
    );
    // Being written: skipped whatever it holds.
    window(
        &record,
        ".w-next",
        minute,
        60.0,
        "app (2);main;half_written 9\n",
    );
    // Another program's directory: a window's files, not the recorder's marker.
    window(
        &record,
        "w-foreign",
        minute,
        60.0,
        "app (2);main;not_recorded 9\n",
    );
    fs::remove_file(record.join("w-foreign/.profiler-window")).unwrap();
    fs::create_dir(record.join("w-unfinished")).unwrap();
    fs::write(
        record.join("w-unfinished/stacks.folded"),
        "app (2);main;half_written 9\n",
    )
    .unwrap();

    let out = dir.path().join("recent.svg");
    let done = flamegraph(
        &[
            "--from",
            utf8(&record),
            "--since",
            "10m",
            "--out",
            utf8(&out),
        ],
        dir.path(),
    );
    done.assert_success();
    let svg = fs::read_to_string(&out).expect("reading recent.svg");
    assert!(
        svg.contains("<title>only_in_new (10 samples, 100.00%)</title>"),
        "the two recent windows are not merged into one 10-sample frame"
    );
    assert!(
        !svg.contains("only_in_old"),
        "a window older than 10m got in"
    );
    assert!(!svg.contains("half_written"), "an unfinished window got in");
    assert!(!svg.contains("not_recorded"), "a foreign directory got in");
    assert!(
        svg.contains("2 windows"),
        "the title does not count the windows"
    );

    let everything = flamegraph(&["--from", utf8(&record)], dir.path());
    everything.assert_success();
    assert!(everything.stdout.contains("only_in_old"));
    assert!(everything.stdout.contains("only_in_new"));

    let none = flamegraph(
        &["--from", utf8(&record), "--since", "10m", "--until", "15m"],
        dir.path(),
    );
    let line = none.error_line();
    assert!(
        line.contains("no window of") && line.contains("its 3 windows started from"),
        "{line}"
    );
    assert!(none.stdout.is_empty(), "stdout: {}", none.stdout);
}
