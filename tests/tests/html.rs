//! End-to-end HTML report: the `report.html` of a diagnose run over a burner must load in real
//! headless Chromium with no console errors, show the burner and its flamegraph frames, render
//! to a screenshot, and keep the flamegraph's search and zoom working inside the page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use profiler_tests::{
    Workload, assert_matches_schema, diagnose_into, file_mode, number, read_json, require_root,
    serial, skip_or_fail, tempdir,
};

const BURNER: &str = env!("CARGO_BIN_EXE_burner");

const INNER: &str = "burner_inner_gamma";

/// Generous: the first start of a browser on a busy host takes seconds.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Run inside a copy of the page: searches the CPU flamegraph and clicks a frame through the
/// flamegraph's own script, sorts a table, then writes what it saw into the DOM for
/// `--dump-dom`. Run after inferno's own deferred set-up (a zero-delay timer).
const PROBE: &str = r#"<script>
window.addEventListener('load', function () { setTimeout(function () {
  var out = [];
  try {
    var frame = document.getElementById('cpu-flamegraph');
    var w = frame.contentWindow, d = frame.contentDocument;
    w.search('burner_inner_gamma');
    out.push('matched=' + d.getElementById('matched').textContent.trim());
    var target = Array.prototype.find.call(d.querySelectorAll('#frames g'), function (g) {
      return g.querySelector('title').textContent.indexOf('burner_inner_gamma') === 0;
    });
    out.push('unzoom_before=' + d.getElementById('unzoom').getAttribute('class'));
    target.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    out.push('unzoom_after=' + d.getElementById('unzoom').getAttribute('class'));
    var th = document.querySelector('#cpu th:nth-child(3)');
    th.click();
    out.push('sorted=' + th.className);
  } catch (e) {
    out.push('error=' + e);
  }
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = out.join(' ');
  document.body.appendChild(pre);
}, 200); });
</script>"#;

#[test]
fn chromium_renders_the_report_with_the_burner_and_its_flamegraph() {
    const TEST: &str = "chromium_renders_the_report_with_the_burner_and_its_flamegraph";
    if !require_root(TEST) {
        return;
    }
    let Some(chromium) = find_chromium() else {
        skip_or_fail(
            TEST,
            "`chromium` not found (Debian package chromium; `cargo xtask setup`)",
        );
        return;
    };
    let _serial = serial();
    let burner = Workload::spawn(BURNER, &[]);
    let dir = tempdir();
    let (out, _) = diagnose_into(dir.path(), "3s");

    let html_path = out.join("report.html");
    assert_eq!(file_mode(&html_path), 0o600, "report.html mode");
    let html = std::fs::read_to_string(&html_path).expect("reading report.html");
    assert!(
        !html.contains("https://") && !html.replace("xmlns", "").contains("=\"http://"),
        "report.html refers to an external resource"
    );

    let report = read_json(&out.join("report.json"));
    assert_matches_schema(&report);
    let timeline = &report["timeline"];
    assert_eq!(number(timeline, "interval_s"), 1.0, "{timeline:#}");
    let series = timeline["series"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["pid"] == burner.pid()))
        .unwrap_or_else(|| panic!("no timeline series for the burner:\n{timeline:#}"));
    let busiest = series["cpu_cores"]
        .as_array()
        .expect("cpu_cores")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .fold(0.0, f64::max);
    assert!(busiest > 0.5, "burner's busiest second: {busiest} cores");

    let browser = Browser::new(chromium, dir.path());

    // The DOM after the page's scripts ran: the burner's row and its frames (in the
    // flamegraph's srcdoc and the hottest-stacks list).
    let dom = browser.run(&["--dump-dom"], &html_path);
    let dom_text = utf8_of(&dom.stdout);
    assert!(
        dom_text.contains(&format!("burner ({})", burner.pid())),
        "DOM lacks `burner ({})`",
        burner.pid()
    );
    assert!(dom_text.contains(INNER), "DOM lacks {INNER}");
    assert!(
        dom_text.contains("<path class=\"band\" data-pid=\""),
        "DOM lacks the CPU timeline's bands"
    );
    assert_no_console_errors(&dom);

    // The flamegraph's own script works inside its frame: search finds, a click zooms; and
    // the page's sorter sorts.
    let probe_path = out.join("probe.html");
    std::fs::write(
        &probe_path,
        html.replace("</body>", &format!("{PROBE}</body>")),
    )
    .expect("writing probe.html");
    let probe = browser.run(&["--virtual-time-budget=5000", "--dump-dom"], &probe_path);
    let probe_dom = utf8_of(&probe.stdout);
    let seen = probe_dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe did not run; stderr:\n{}", utf8_of(&probe.stderr)));
    assert!(!seen.contains("error="), "probe: {seen}");
    assert!(
        seen.contains("matched=Matched:"),
        "flamegraph search matched nothing: {seen}"
    );
    // inferno shows its "Reset Zoom" button, hidden until then, once a frame is zoomed into.
    assert!(
        seen.contains("unzoom_before=hide") && seen.contains("unzoom_after= "),
        "clicking a frame did not zoom: {seen}"
    );
    assert!(seen.contains("sorted=desc"), "table did not sort: {seen}");
    assert_no_console_errors(&probe);

    let png = dir.path().join("report.png");
    let shot = browser.run(
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,2000",
        ],
        &html_path,
    );
    let size = std::fs::metadata(&png)
        .unwrap_or_else(|err| {
            panic!(
                "no screenshot at {}: {err}; stderr:\n{}",
                png.display(),
                utf8_of(&shot.stderr)
            )
        })
        .len();
    // Captured by libtest: shown on failure or with --nocapture.
    eprintln!("screenshot: {size} bytes; probe: {seen}");
    assert!(size > 20_000, "screenshot is {size} bytes: a blank page?");
    assert_no_console_errors(&shot);
}

/// Headless Chromium with a throwaway profile.
struct Browser {
    exe: PathBuf,
    profile: PathBuf,
}

impl Browser {
    fn new(exe: PathBuf, dir: &Path) -> Self {
        Self {
            exe,
            profile: dir.join("chromium-profile"),
        }
    }

    /// Loads `page` with `args`; fails the test on a timeout or a non-zero exit. Output goes
    /// through files: a DOM dump outgrows a pipe's buffer while nobody reads it.
    fn run(&self, args: &[&str], page: &Path) -> Output {
        let stdout_path = self.profile.with_extension("stdout");
        let stderr_path = self.profile.with_extension("stderr");
        let file = |path: &Path| std::fs::File::create(path).expect("creating an output file");
        let mut child = Command::new(&self.exe)
            // As root, Chromium refuses to start without --no-sandbox.
            .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
            .args(["--no-first-run", "--disable-extensions"])
            // Console messages go to stderr as `INFO:CONSOLE:<line>] "<message>", source: ...`.
            .args(["--enable-logging=stderr", "--v=0"])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(file(&stdout_path))
            .stderr(file(&stderr_path))
            .spawn()
            .expect("starting chromium");
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for chromium") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium {args:?} still running after {BROWSER_TIMEOUT:?}; stderr:\n{}",
                    utf8_of(&std::fs::read(&stderr_path).unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let output = Output {
            status,
            stdout: std::fs::read(&stdout_path).expect("reading chromium's stdout"),
            stderr: std::fs::read(&stderr_path).expect("reading chromium's stderr"),
        };
        assert!(
            output.status.success(),
            "chromium {args:?}: {}; stderr:\n{}",
            output.status,
            utf8_of(&output.stderr)
        );
        output
    }
}

/// The page writes nothing to the console when all is well, so any console line fails: an
/// uncaught exception (`"Uncaught ...`) or a console.error/warn/log alike. On Chromium 156
/// `--enable-logging=stderr` logs every console message at INFO as `:CONSOLE:`; older versions
/// wrote `:CONSOLE(<line>)`. Browser-process noise (D-Bus, GPU) is not the page's and is ignored.
fn assert_no_console_errors(output: &Output) {
    let stderr = utf8_of(&output.stderr);
    let page_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            line.contains(":CONSOLE:")
                || line.contains(":CONSOLE(")
                || line.contains("ERROR:CONSOLE")
                || line.contains("Uncaught")
        })
        .collect();
    assert!(
        page_lines.is_empty(),
        "the page wrote to the console:\n{}",
        page_lines.join("\n")
    );
}

fn utf8_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|exe| exe.is_file())
}
