//! End-to-end handling of process names and command lines as untrusted input: `evilname`
//! workloads name themselves with escape sequences, newlines, markup, shell syntax and invalid
//! UTF-8, and carry such arguments (and one of 100 KiB). Every output must stay well-formed and
//! show the name as text: the terminal table, report.json, the SVGs (parsed as XML), report.html
//! (parsed as HTML), profile.pb.gz (read by `go tool pprof`), the `/metrics` page (checked by
//! `promtool`) and the `--on-alert` hook (no shell ever sees the name). `--redact` keeps a
//! secret argument out of every output of diagnose, record and top.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use profiler_tests::{
    ProfilerRun, REPORT_GRACE, Workload, assert_matches_schema, diagnose, find_go, free_port,
    go_pprof, http_get, process_entry, profiler_command, read_json, require_root, serial,
    skip_or_fail, tempdir, utf8,
};
use serde_json::Value;

const EVILNAME: &str = env!("CARGO_BIN_EXE_evilname");

/// The names, at most 15 bytes each (the kernel's comm).
const ESCAPES: &[u8] = b"\x1b[2J\x1b]0;pwn\x07";
const MARKUP: &[u8] = b"<script>&\"'\n";
const SHELL: &[u8] = b"$(touch pwned)";
const MIXED: &[u8] = b"`id`;\r\xff\xfe|x";
/// Two terminal columns per character: aligned by columns, not characters.
const WIDE: &[u8] = "日本語テス".as_bytes();

/// The bytes after which a cmdline is cut (docs/report.md).
const CMDLINE_MAX_BYTES: usize = 4096;
const BIG_ARGUMENT_BYTES: usize = 100 * 1024;

/// Arguments after `--`, which evilname ignores: invalid UTF-8, markup, shell syntax, line
/// breaks and escape sequences, then one of 100 KiB, which the report cuts.
fn hostile_arguments() -> Vec<Vec<u8>> {
    vec![
        b"\xff\xfeargv\x80".to_vec(),
        b"<img src=x onerror=alert(1)>".to_vec(),
        b"$(touch pwned2) `touch pwned3`; rm -rf ./nothing && echo".to_vec(),
        b"line1\nline2\r\n".to_vec(),
        b"\x1b]0;title\x07".to_vec(),
        vec![b'A'; BIG_ARGUMENT_BYTES],
    ]
}

/// Time for each profiler command to load its programs and finish its report.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts evilname as `name` with `extra` arguments after `--`, and waits until the kernel shows
/// the new name.
fn spawn_evil(name: &[u8], extra: &[Vec<u8>]) -> Workload {
    let mut args: Vec<OsString> = vec!["--name".into(), OsString::from_vec(name.to_vec())];
    args.push("--".into());
    args.extend(extra.iter().map(|arg| OsString::from_vec(arg.clone())));
    let workload = Workload::spawn_os(EVILNAME, &args);
    let comm_path = format!("/proc/{}/comm", workload.pid());
    let mut want = name.to_vec();
    want.push(b'\n');
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read(&comm_path).ok().as_deref() != Some(want.as_slice()) {
        assert!(
            Instant::now() < deadline,
            "{comm_path} never became {name:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    workload
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A name as the folded files and flamegraphs show it: `;` as `:`, control characters as U+FFFD.
fn folded_name(name: &[u8]) -> String {
    lossy(name)
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

#[test]
fn diagnose_keeps_every_output_well_formed_with_hostile_names() {
    const TEST: &str = "diagnose_keeps_every_output_well_formed_with_hostile_names";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let names = [ESCAPES, MARKUP, SHELL, MIXED, WIDE];
    let workloads: Vec<(Workload, &[u8])> = names
        .iter()
        .map(|name| (spawn_evil(name, &hostile_arguments()), *name))
        .collect();
    let dir = tempdir();
    let out = dir.path().join("out");
    let done = diagnose(
        &["--duration", "3s", "--out", utf8(&out)],
        dir.path(),
        RUN_TIMEOUT,
    );
    done.assert_success();
    let evil: Vec<(u32, &[u8])> = workloads.iter().map(|(w, name)| (w.pid(), *name)).collect();

    check_table(&done.stdout, &evil);
    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    check_report(&report, &evil);
    for file in ["flamegraph.svg", "offcpu.svg"] {
        check_svg(&out.join(file), &evil);
    }
    let diff = dir.path().join("diff.svg");
    let mut command = profiler_command();
    // Against itself: every frame neutral, every name drawn through the differential path.
    command
        .arg("flamegraph")
        .arg(out.join("stacks.folded"))
        .arg("--diff")
        .arg(out.join("stacks.folded"))
        .arg("--out")
        .arg(&diff);
    ProfilerRun::start(command)
        .finish(RUN_TIMEOUT)
        .assert_success();
    check_svg(&diff, &evil);
    check_html(&out.join("report.html"), &evil);
    check_pprof(TEST, &out.join("profile.pb.gz"), dir.path(), &evil);
    drop(workloads);
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(
            !dir.path().join(name).exists(),
            "something ran a name or argument"
        );
    }
}

#[test]
fn top_once_prints_hostile_names_on_their_own_row() {
    if !require_root("top_once_prints_hostile_names_on_their_own_row") {
        return;
    }
    let _serial = serial();
    let workloads: Vec<Workload> = [ESCAPES, MARKUP, SHELL, MIXED, WIDE]
        .iter()
        .map(|name| spawn_evil(name, &[]))
        .collect();
    let dir = tempdir();
    let mut command = profiler_command();
    command
        .args(["top", "--once", "--interval", "1s"])
        .current_dir(dir.path());
    let done = ProfilerRun::start(command).finish(RUN_TIMEOUT);
    done.assert_success();
    let stdout = &done.stdout;
    assert_no_control_characters(stdout);
    let header = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("PID"))
        .unwrap_or_else(|| panic!("no table header:\n{stdout}"));
    // CPU is right-aligned under its header: the row's figure ends where the header's name does.
    let cpu_end = header.find(" CPU").expect("CPU column") + " CPU".len();
    for workload in &workloads {
        let pid = workload.pid().to_string();
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(pid.as_str()))
            .unwrap_or_else(|| panic!("no row for evilname {pid}:\n{stdout}"));
        let cpu = at_columns(row, 0, cpu_end);
        let figure = cpu.rsplit(' ').next().unwrap_or_default();
        assert!(
            figure.parse::<f64>().is_ok(),
            "row of {pid} is misaligned: {figure:?} under CPU\n{header}\n{row}"
        );
    }
    assert!(!dir.path().join("pwned").exists(), "something ran a name");
}

/// No control character but line breaks reaches the terminal through `stdout`.
fn assert_no_control_characters(stdout: &str) {
    let bad: Vec<char> = stdout
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "control characters {bad:?} on stdout:\n{stdout}"
    );
}

/// No control character but line breaks reaches the terminal, and each evil row's EXE column
/// starts where the header's does.
fn check_table(stdout: &str, evil: &[(u32, &[u8])]) {
    assert_no_control_characters(stdout);
    let header = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("RANK"))
        .unwrap_or_else(|| panic!("no table header:\n{stdout}"));
    let exe_column = header.find("EXE").expect("EXE column");
    for &(pid, _) in evil {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("no row for evilname {pid}:\n{stdout}"));
        let exe = at_columns(row, exe_column, 28);
        assert!(
            exe.trim_end().ends_with("evilname"),
            "row of {pid} is misaligned: EXE column reads {exe:?}\n{header}\n{row}"
        );
    }
}

/// The characters of `line` drawn in terminal columns `start..start + width`.
fn at_columns(line: &str, start: usize, width: usize) -> String {
    use unicode_width::UnicodeWidthChar as _;
    let mut column = 0;
    let mut out = String::new();
    for c in line.chars() {
        if (start..start + width).contains(&column) {
            out.push(c);
        }
        column += c.width().unwrap_or(0);
    }
    out
}

/// Names round-trip through JSON (invalid UTF-8 as U+FFFD) and the command line is kept, the
/// 100 KiB argument cut at the documented length with its marker.
fn check_report(report: &Value, evil: &[(u32, &[u8])]) {
    let arguments = hostile_arguments();
    for &(pid, name) in evil {
        let process = process_entry(report, pid)
            .unwrap_or_else(|| panic!("evilname {pid} not in report.json"));
        assert_eq!(process["comm"], lossy(name), "{process:#}");
        let cmdline: Vec<&str> = process["cmdline"]
            .as_array()
            .unwrap_or_else(|| panic!("no cmdline: {process:#}"))
            .iter()
            .map(|arg| arg.as_str().expect("arguments are strings"))
            .collect();
        let mut want: Vec<String> = vec!["--name".into(), lossy(name), "--".into()];
        want.extend(
            arguments[..arguments.len() - 1]
                .iter()
                .map(|arg| lossy(arg)),
        );
        assert_eq!(cmdline.len(), want.len() + 2, "{cmdline:?}");
        assert!(cmdline[0].ends_with("evilname"), "{cmdline:?}");
        assert_eq!(
            cmdline[1..=want.len()],
            want,
            "arguments before the long one"
        );
        let cut = cmdline[want.len() + 1];
        let (shown, marker) = cut
            .split_once('…')
            .expect("a cut argument ends in …[+N bytes]");
        assert!(shown.bytes().all(|b| b == b'A'), "{shown:?}");
        let hidden: usize = marker
            .strip_prefix("[+")
            .and_then(|rest| rest.strip_suffix(" bytes]"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("marker {marker:?} is not [+N bytes]"));
        assert_eq!(shown.len() + hidden, BIG_ARGUMENT_BYTES);
        let kept: usize = cmdline[..=want.len()].iter().map(|arg| arg.len()).sum();
        assert_eq!(
            kept + shown.len(),
            CMDLINE_MAX_BYTES,
            "cut at {CMDLINE_MAX_BYTES} bytes of argument text"
        );
    }
}

/// The SVG is well-formed XML, and some frame's tooltip names each evil process.
fn check_svg(path: &Path, evil: &[(u32, &[u8])]) {
    let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    // inferno's SVGs declare the SVG 1.1 DTD; it holds no entity a name could use.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options)
        .unwrap_or_else(|err| panic!("{} is not well-formed XML: {err}", path.display()));
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|node| node.has_tag_name("title"))
        .filter_map(|node| node.text())
        .collect();
    for &(pid, name) in evil {
        let root = format!("{} ({pid})", folded_name(name));
        assert!(
            titles.iter().any(|title| title.starts_with(&root)),
            "{}: no frame titled {root:?}",
            path.display()
        );
    }
}

/// report.html has only its own script, no element from a name or an argument, and the names
/// as text.
fn check_html(path: &Path, evil: &[(u32, &[u8])]) {
    let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let page = scraper::Html::parse_document(&text);
    let select = |css: &str| scraper::Selector::parse(css).expect("a valid selector");
    assert_eq!(
        page.select(&select("script")).count(),
        1,
        "report.html has a script besides its own"
    );
    assert_eq!(
        page.select(&select("img, [onerror]")).count(),
        0,
        "an argument became markup"
    );
    // The flamegraphs are documents of their own (srcdoc): their scripts are inferno's and the
    // history shim, nothing a name brought.
    for frame in page.select(&select("iframe[srcdoc]")) {
        let doc = scraper::Html::parse_document(frame.value().attr("srcdoc").unwrap_or_default());
        assert_eq!(
            doc.select(&select("script")).count(),
            2,
            "scripts in a flamegraph frame"
        );
        assert_eq!(doc.select(&select("img, [onerror]")).count(), 0);
    }
    let cells: Vec<String> = page
        .select(&select("td"))
        .map(|cell| cell.text().collect())
        .collect();
    for &(pid, name) in evil {
        // As the page writes it: control characters but line feeds and tabs as U+FFFD.
        let shown: String = lossy(name)
            .chars()
            .map(|c| match c {
                c if c.is_control() && c != '\n' && c != '\t' => '\u{fffd}',
                c => c,
            })
            .collect();
        assert!(
            cells.contains(&shown),
            "no table cell reads {shown:?} (evilname {pid})"
        );
    }
}

/// `go tool pprof` reads the profile (protobuf strings must be UTF-8) and labels the evil
/// processes' samples with their names.
fn check_pprof(test: &str, profile: &Path, dir: &Path, evil: &[(u32, &[u8])]) {
    let Some(go) = find_go() else {
        skip_or_fail(
            test,
            "`go` not found (Debian package golang-go; `cargo xtask setup`)",
        );
        return;
    };
    let home = dir.join("go-home");
    fs::create_dir(&home).expect("creating a home for go");
    let raw = go_pprof(&go, &home, "-raw", profile);
    for &(pid, name) in evil {
        assert!(
            raw.contains(&format!("pid:[{pid}]")),
            "no sample of evilname {pid} in `go tool pprof -raw`"
        );
        // pprof prints labels raw: the printable part of the name is there as it is.
        let printable: String = lossy(name)
            .split(|c: char| c.is_control())
            .max_by_key(|part| part.len())
            .unwrap_or_default()
            .to_owned();
        assert!(
            raw.contains(&printable),
            "`go tool pprof -raw` does not show {printable:?} (evilname {pid})"
        );
    }
}

/// Generous: loading the programs, then the rule's ticks, on a host busy with other builds.
const ALERT_TIMEOUT: Duration = Duration::from_secs(90);

/// The `--on-alert` hook: writes its stdin and its arguments to files named by its pid.
const HOOK: &str =
    "#!/bin/sh\nset -e\ncat > \"$HOOKS/stdin.$$\"\nprintf '%s\\n' \"$@\" > \"$HOOKS/argv.$$\"\n";

#[test]
fn record_metrics_and_alert_hooks_take_hostile_names_and_redact_arguments() {
    if !require_root("record_metrics_and_alert_hooks_take_hostile_names_and_redact_arguments") {
        return;
    }
    let _serial = serial();
    let secret = format!("hunter2-{}-{:?}", std::process::id(), Instant::now());
    let burner = spawn_evil(SHELL, &[b"--token".to_vec(), secret.clone().into_bytes()]);
    let markup = spawn_evil(MARKUP, &hostile_arguments());
    let dir = tempdir();
    let hooks = dir.path().join("hooks");
    fs::create_dir(&hooks).expect("creating the hooks directory");
    let hook = dir.path().join("hook.sh");
    fs::write(&hook, HOOK).expect("writing the hook");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod the hook");
    let out = dir.path().join("record");
    let port = free_port();
    let mut command = profiler_command();
    command
        .args(["record", "--out", utf8(&out), "--window", "2s", "--redact"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .args(["--alert", "cpu.cores > 0.2 for 1s"])
        .arg("--on-alert")
        .arg(format!("'{}' first 'two words'", utf8(&hook)))
        .env("HOOKS", &hooks)
        .current_dir(dir.path());
    let mut run = ProfilerRun::start(command);
    run.wait_attached();

    let metrics = wait_for(ALERT_TIMEOUT, "both evilnames in /metrics", || {
        http_get(port, "/metrics").ok().filter(|body| {
            [burner.pid(), markup.pid()]
                .iter()
                .all(|pid| body.contains(&format!("pid=\"{pid}\"")))
        })
    });
    let hook_input = wait_for(ALERT_TIMEOUT, "the hook run for the burner", || {
        hook_runs(&hooks).into_iter().find(|(stdin, _)| {
            serde_json::from_str::<Value>(stdin.trim_end())
                .is_ok_and(|event| event["pid"] == burner.pid() && event["state"] == "firing")
        })
    });
    run.signal(libc::SIGTERM);
    let done = run.finish(REPORT_GRACE);
    done.assert_success();

    check_metrics(
        dir.path(),
        &metrics,
        &[(burner.pid(), SHELL), (markup.pid(), MARKUP)],
    );
    let (stdin, argv) = hook_input;
    assert!(
        stdin.ends_with('\n') && stdin.lines().count() == 1,
        "the hook's stdin is not one line: {stdin:?}"
    );
    let event: Value = serde_json::from_str(&stdin).expect("the hook's stdin is JSON");
    assert_eq!(event["comm"], lossy(SHELL), "{event:#}");
    assert_eq!(argv, "first\ntwo words\n", "the hook's arguments");
    for place in [dir.path(), hooks.as_path(), out.as_path()] {
        assert!(
            !place.join("pwned").exists(),
            "a shell ran the name in {}",
            place.display()
        );
    }

    // --redact: the burner's arguments are hashes in the windows, the same hash as sha256sum
    // gives, and the secret is in no file and on no output line.
    let hashed = redacted(&secret);
    let window = windows_with(&out, burner.pid());
    let process = process_entry(&window, burner.pid()).expect("the burner in its window");
    let cmdline = process["cmdline"].as_array().expect("cmdline");
    assert!(
        cmdline[0]
            .as_str()
            .is_some_and(|exe| exe.ends_with("evilname")),
        "{process:#}"
    );
    assert_eq!(cmdline[cmdline.len() - 1], hashed, "{process:#}");
    assert!(
        cmdline[1..]
            .iter()
            .all(|arg| arg.as_str().is_some_and(|arg| arg.starts_with("sha256:"))),
        "{process:#}"
    );
    let mut texts = vec![
        ("stdout".to_owned(), done.stdout.clone().into_bytes()),
        ("stderr".to_owned(), done.stderr.clone().into_bytes()),
        ("/metrics".to_owned(), metrics.into_bytes()),
    ];
    texts.extend(files_under(&out));
    texts.extend(files_under(&hooks));
    for (what, bytes) in texts {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret argument is in {what} despite --redact"
        );
    }
}

/// `promtool check metrics` accepts the whole page, and the `comm` label of each evil
/// process's CPU gauge decodes back to its name.
fn check_metrics(dir: &Path, page: &str, evil: &[(u32, &[u8])]) {
    let path = dir.join("metrics.txt");
    fs::write(&path, page).expect("saving /metrics");
    let checked = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&path).expect("reading it back"))
        .output();
    match checked {
        Ok(output) => {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                output.status.success() || only_openmetrics_counter_help(&output, &report, page),
                "promtool check metrics rejects /metrics ({}):\n{report}\n{page}",
                output.status,
            );
        }
        Err(err) => {
            skip_or_fail(
                "record_metrics_and_alert_hooks_take_hostile_names_and_redact_arguments",
                &format!("promtool (Debian package prometheus) cannot run: {err}"),
            );
        }
    }
    for &(pid, name) in evil {
        let pid_label = format!("pid=\"{pid}\"");
        let line = page
            .lines()
            .find(|line| {
                line.starts_with("profiler_process_cpu_cores{") && line.contains(&pid_label)
            })
            .unwrap_or_else(|| panic!("no CPU gauge of evilname {pid}:\n{page}"));
        assert_eq!(label(line, "comm"), lossy(name), "{line}");
    }
}

/// Whether promtool parsed the page (exit 3 is its linter's verdict, 1 a parse error) and its
/// only complaint is `<name>_total no help text` for counters the page documents as OpenMetrics
/// does, under the family name without `_total`: promtool lints the older text format, where
/// help text is keyed by the sample name.
fn only_openmetrics_counter_help(output: &std::process::Output, report: &str, page: &str) -> bool {
    output.status.code() == Some(3)
        && report.lines().all(|line| {
            line.strip_suffix(" no help text")
                .and_then(|name| name.strip_suffix("_total"))
                .is_some_and(|family| {
                    page.contains(&format!("# HELP {family} "))
                        && page.contains(&format!("# TYPE {family} counter"))
                })
        })
}

/// The value of label `key` in an exposition line, unescaped (`\\`, `\"`, `\n`).
fn label(line: &str, key: &str) -> String {
    let start = line
        .find(&format!("{key}=\""))
        .unwrap_or_else(|| panic!("no {key} label in {line}"))
        + key.len()
        + 2;
    let mut value = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return value,
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some(other) => value.push(other),
                None => break,
            },
            c => value.push(c),
        }
    }
    panic!("unterminated {key} label in {line}")
}

/// Calls `probe` every 200 ms until it returns something, for at most `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "no {what} within {timeout:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// (stdin, arguments) of each finished hook run: both files written.
fn hook_runs(hooks: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(hooks) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let pid = name.strip_prefix("argv.")?;
            let stdin = fs::read_to_string(hooks.join(format!("stdin.{pid}"))).ok()?;
            let argv = fs::read_to_string(hooks.join(&name)).ok()?;
            Some((stdin, argv))
        })
        .collect()
}

/// `sha256:` and the first 16 hex digits of `sha256sum`'s digest of `arg`.
fn redacted(arg: &str) -> String {
    let path = tempdir();
    let file = path.path().join("arg");
    fs::write(&file, arg).expect("writing the argument");
    let output = Command::new("sha256sum")
        .arg(&file)
        .stdout(Stdio::piped())
        .output()
        .expect("running sha256sum");
    assert!(output.status.success(), "sha256sum failed");
    let digest = String::from_utf8_lossy(&output.stdout);
    format!("sha256:{}", &digest[..16])
}

/// The newest window report.json of a record directory that has `pid` in it.
fn windows_with(out: &Path, pid: u32) -> Value {
    let mut windows: Vec<PathBuf> = fs::read_dir(out)
        .expect("reading the record directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("report.json")))
        .filter(|report| report.is_file())
        .collect();
    windows.sort();
    windows
        .iter()
        .rev()
        .map(|path| read_json(path))
        .find(|report| process_entry(report, pid).is_some())
        .unwrap_or_else(|| panic!("no window of {} has pid {pid}", out.display()))
}

/// Every file under `dir`, named, with gzip files decompressed by `gzip -dc`.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries =
                fs::read_dir(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            pending.extend(entries.filter_map(|entry| entry.ok().map(|entry| entry.path())));
            continue;
        }
        let bytes = if path.extension().is_some_and(|ext| ext == "gz") {
            let output = Command::new("gzip")
                .arg("-dc")
                .arg(&path)
                .output()
                .expect("running gzip");
            assert!(
                output.status.success(),
                "gzip -dc {} failed",
                path.display()
            );
            output.stdout
        } else {
            fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        };
        files.push((path.display().to_string(), bytes));
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn redact_keeps_a_secret_argument_out_of_diagnose_and_top() {
    if !require_root("redact_keeps_a_secret_argument_out_of_diagnose_and_top") {
        return;
    }
    let _serial = serial();
    let secret = format!("hunter2-{}-{:?}", std::process::id(), Instant::now());
    let workload = spawn_evil(
        b"secretive",
        &[b"--password".to_vec(), secret.clone().into_bytes()],
    );
    let pid = workload.pid();
    let dir = tempdir();

    // Without --redact the secret is in the report: the checks below can see it.
    let plain = dir.path().join("plain");
    diagnose(
        &["--duration", "2s", "--out", utf8(&plain)],
        dir.path(),
        RUN_TIMEOUT,
    )
    .assert_success();
    let report = read_json(&plain.join("report.json"));
    let process = process_entry(&report, pid).expect("the workload in the report");
    assert_eq!(process["cmdline"][5], secret.as_str(), "{process:#}");

    let out = dir.path().join("redacted");
    let done = diagnose(
        &["--duration", "2s", "--out", utf8(&out), "--redact"],
        dir.path(),
        RUN_TIMEOUT,
    );
    done.assert_success();
    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    let process = process_entry(&report, pid).expect("the workload in the report");
    assert_eq!(process["cmdline"][5], redacted(&secret), "{process:#}");
    assert_eq!(process["cmdline"][1], redacted("--name"), "{process:#}");
    assert!(
        process["cmdline"][0]
            .as_str()
            .is_some_and(|exe| exe.ends_with("evilname")),
        "the program is kept: {process:#}"
    );
    let mut texts = vec![
        ("stdout".to_owned(), done.stdout.into_bytes()),
        ("stderr".to_owned(), done.stderr.into_bytes()),
    ];
    texts.extend(files_under(&out));

    let mut command = profiler_command();
    command
        .args(["top", "--json", "--interval", "500ms", "--redact"])
        .current_dir(dir.path());
    let mut top = ProfilerRun::start(command);
    top.wait_attached();
    thread::sleep(Duration::from_secs(3));
    top.signal(libc::SIGTERM);
    let done = top.finish(RUN_TIMEOUT);
    done.assert_success();
    let seen = done
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("top --json prints JSON lines"))
        .find_map(|tick| process_entry(&tick, pid).cloned())
        .unwrap_or_else(|| panic!("the workload is in no tick of top --json:\n{}", done.stdout));
    assert_eq!(seen["cmdline"][5], redacted(&secret), "{seen:#}");
    texts.push(("top stdout".to_owned(), done.stdout.into_bytes()));
    texts.push(("top stderr".to_owned(), done.stderr.into_bytes()));

    for (what, bytes) in texts {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret argument is in {what} despite --redact"
        );
    }
}

#[test]
fn an_executable_with_a_newline_in_its_path_keeps_its_symbols() {
    const TEST: &str = "an_executable_with_a_newline_in_its_path_keeps_its_symbols";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    // /proc/PID/maps shows the newline as `\012`; the file must still be found by its name.
    let dir = tempdir();
    let odd = dir.path().join("new\nline");
    fs::create_dir(&odd).expect("creating a directory with a newline in its name");
    let exe = odd.join("burner");
    fs::copy(env!("CARGO_BIN_EXE_burner"), &exe).expect("copying burner");
    let burner = Workload::spawn(utf8(&exe), &[]);
    let run = profiler_tests::diagnose_window(Duration::from_secs(2), &[], |_| {});
    let entry = process_entry(&run.report, burner.pid())
        .unwrap_or_else(|| panic!("burner missing from the report"));
    let hottest = entry["cpu"]["hottest"]["function"].as_str().unwrap_or("");
    assert!(
        hottest.starts_with("burner_"),
        "burner's hottest function is `{hottest}`, not one of its own: its file was not read"
    );
}
