//! JIT code named from its runtime's perf map: Node run with `--perf-basic-prof` writes
//! `/tmp/perf-PID.map` as it compiles, and the hot JavaScript function must appear by name in the
//! flamegraph's stacks, where without the map its frames are `[unknown]`.

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use profiler_tests::{Workload, diagnose_window, folded_lines_of, node, require_root, serial};

const FUNCTION: &str = "hot_js_loop";
const SCRIPT: &str = "function hot_js_loop(n) { let s = 0; for (let i = 0; i < n; i++) { \
                      s += (i * i) % 7; } return s; } let t = 0; for (;;) { t += hot_js_loop(1e6); }";

#[test]
fn node_s_jit_compiled_function_is_named_from_its_perf_map() {
    const TEST: &str = "node_s_jit_compiled_function_is_named_from_its_perf_map";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    // `--perf-basic-prof` also turns V8's own log on, to a file in the working directory by
    // default: this way it goes to stdout, which the workload does not keep.
    let node = Workload::spawn(
        &node(),
        &[
            "--perf-basic-prof",
            "--no-logfile-per-isolate",
            "--logfile=/dev/null",
            "-e",
            SCRIPT,
        ],
    );
    let map = Removed(PathBuf::from(format!("/tmp/perf-{}.map", node.pid())));
    // Compiled, and written to the map, within a second or so of starting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&map.0).is_ok_and(|text| text.contains(FUNCTION)) {
        assert!(
            Instant::now() < deadline,
            "node wrote no {FUNCTION} to {} in 10 s",
            map.0.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let run = diagnose_window(Duration::from_secs(3), &[], |_| {});
    let folded = fs::read_to_string(run.out.join("stacks.folded")).expect("reading stacks.folded");
    let lines = folded_lines_of(&folded, &format!("node ({})", node.pid()));
    let samples = |named: &dyn Fn(&str) -> bool| -> u64 {
        lines
            .iter()
            .filter(|line| named(line))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
            .sum()
    };
    let all = samples(&|_| true);
    let in_function = samples(&|line| line.contains(FUNCTION));
    eprintln!("node: {in_function} of {all} samples in {FUNCTION}");
    // The loop is nearly all the process does; a tenth leaves room for the compiler's threads.
    assert!(
        all > 0 && in_function * 10 >= all,
        "{in_function} of node's {all} samples name {FUNCTION}: {lines:#?}"
    );
}

/// A file removed when dropped: Node leaves its map behind.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
