//! User stacks of code built without frame pointers, walked with unwind tables compiled from
//! `.eh_frame`: a known call chain in a C program built `-O2 -fomit-frame-pointer` is whole in
//! at least 95 % of its samples with tables, and not with frame pointers alone; where a binary
//! has no table, or the tables have no room for one, frame pointers take over and the report
//! counts it. `record --unwind tables` writes windows of whole stacks too; `record` alone walks by
//! frame pointers.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use profiler_tests::{
    REPORT_GRACE, Workload, count, diagnose_window, folded_frames, folded_lines_of, read_json,
    record_into, record_windows, require_root, serial, tempdir,
};

/// Each function of the chain is its own frame: never inlined, and each does work after its
/// call, so no call becomes a jump.
const CHAIN_C: &str = r#"
#include <stdint.h>
volatile uint64_t sink;
__attribute__((noinline)) void chain_leaf(void) {
    for (uint64_t i = 0; i < 50000000; i++) sink += i * 7;
}
__attribute__((noinline)) void chain_c(void) { chain_leaf(); sink++; }
__attribute__((noinline)) void chain_b(void) { chain_c(); sink++; }
__attribute__((noinline)) void chain_a(void) { chain_b(); sink++; }
int main(void) { for (;;) chain_a(); }
"#;

/// Outermost first, as folded stacks list them.
const CHAIN: [&str; 5] = ["main", "chain_a", "chain_b", "chain_c", "chain_leaf"];
/// The chain as frame pointers see it: gcc sets up no frame in a leaf function that needs no
/// stack (whatever -mno-omit-leaf-frame-pointer says), so the leaf's caller is skipped, as it
/// is by `perf record -g`.
const CHAIN_BY_POINTERS: [&str; 4] = ["main", "chain_a", "chain_b", "chain_leaf"];
const WINDOW: Duration = Duration::from_secs(4);

/// Builds the chain with `flags` into `dir`.
fn build(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let source = dir.join("chain.c");
    std::fs::write(&source, CHAIN_C).expect("writing chain.c");
    let exe = dir.join(name);
    let status = Command::new("gcc")
        .args(["-O2", "-g0"])
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .status()
        .expect("running gcc (cargo xtask setup installs it)");
    assert!(status.success(), "gcc {flags:?} failed");
    exe
}

/// What one diagnose run saw of the chain.
struct Seen {
    /// Samples of the process, and those whose stack holds the whole chain in order.
    samples: u64,
    whole: u64,
    unwinding: serde_json::Value,
}

fn diagnose(exe: &Path, args: &[&str]) -> Seen {
    diagnose_for(exe, args, &CHAIN)
}

fn diagnose_for(exe: &Path, args: &[&str], chain: &[&str]) -> Seen {
    let workload = Workload::spawn(exe.to_str().expect("utf-8 path"), &[]);
    let pid = workload.pid().to_string();
    let mut all_args = vec!["--signals", "cpu", "--pid", &pid];
    all_args.extend(args);
    let run = diagnose_window(WINDOW, &all_args, |_| {});
    let folded = std::fs::read_to_string(run.out.join("stacks.folded")).expect("stacks.folded");
    let comm: String = exe
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .chars()
        .take(15)
        .collect();
    let (samples, whole) = count_whole(&folded, &format!("{comm} ({pid})"), chain);
    let unwinding = run.report["unwinding"].clone();
    eprintln!("{comm} {args:?}: {whole} of {samples} samples whole; unwinding {unwinding}");
    Seen {
        samples,
        whole,
        unwinding,
    }
}

/// Samples of `root` in a folded file, and those whose stack holds `chain`.
fn count_whole(folded: &str, root: &str, chain: &[&str]) -> (u64, u64) {
    let (mut samples, mut whole) = (0, 0);
    for line in folded_lines_of(folded, root) {
        let (frames, n) = folded_frames(line).expect("a well-formed folded line");
        samples += n;
        if holds_chain(&frames, chain) {
            whole += n;
        }
    }
    (samples, whole)
}

/// The chain's frames, adjacent and in order, kernel frames aside.
fn holds_chain(frames: &[&str], chain: &[&str]) -> bool {
    let user: Vec<&str> = frames
        .iter()
        .copied()
        .filter(|f| !f.ends_with("_[k]"))
        .collect();
    user.windows(chain.len()).any(|w| w == chain)
}

#[test]
fn a_chain_without_frame_pointers_is_whole_with_tables_and_cut_without() {
    const TEST: &str = "a_chain_without_frame_pointers_is_whole_with_tables_and_cut_without";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let exe = build(dir.path(), "chain-nofp", &["-fomit-frame-pointer"]);

    let tables = diagnose(&exe, &[]);
    assert!(tables.samples > 100, "only {} samples", tables.samples);
    assert!(
        tables.whole * 100 >= tables.samples * 95,
        "with tables, {} of {} samples hold main → chain_a → chain_b → chain_c → chain_leaf",
        tables.whole,
        tables.samples
    );
    assert_eq!(tables.unwinding["cpu"], "tables");
    assert!(count(&tables.unwinding, "walked_samples") >= tables.whole);
    let held = &tables.unwinding["tables"];
    assert!(
        count(held, "processes") >= 1 && count(held, "rows_used") > 1000,
        "{held}"
    );

    // The same binary by frame pointers: the chain is cut after the leaf, so the test above
    // tells the two apart.
    let pointers = diagnose(&exe, &["--unwind", "frame-pointers"]);
    assert!(pointers.samples > 100, "only {} samples", pointers.samples);
    assert!(
        pointers.whole * 100 < pointers.samples * 20,
        "by frame pointers alone {} of {} samples hold the chain: the binary keeps them",
        pointers.whole,
        pointers.samples
    );
    assert_eq!(pointers.unwinding["cpu"], "frame_pointers");
    assert!(pointers.unwinding["tables"].is_null());
}

#[test]
fn without_a_table_or_room_for_one_frame_pointers_take_over_and_are_counted() {
    const TEST: &str = "without_a_table_or_room_for_one_frame_pointers_take_over_and_are_counted";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    // No call frame information for the chain's own functions, frame pointers kept.
    let bare = build(
        dir.path(),
        "chain-bare",
        &[
            "-fno-omit-frame-pointer",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
        ],
    );
    let seen = diagnose_for(&bare, &[], &CHAIN_BY_POINTERS);
    assert!(seen.samples > 100, "only {} samples", seen.samples);
    assert!(
        seen.whole * 100 >= seen.samples * 90,
        "without rows for its functions, {} of {} samples hold the chain",
        seen.whole,
        seen.samples
    );
    assert!(
        count(&seen.unwinding, "fell_back_samples") * 100 >= seen.samples * 90,
        "walks by frame pointers not counted: {}",
        seen.unwinding
    );

    // Room for 4096 rows: libc's table (about 28 000) does not fit.
    let framed = build(dir.path(), "chain-framed", &["-fno-omit-frame-pointer"]);
    let seen = diagnose(&framed, &["--unwind-rows", "4096"]);
    assert!(
        seen.whole * 100 >= seen.samples * 90,
        "with libc's table left out, {} of {} samples hold the chain",
        seen.whole,
        seen.samples
    );
    let held = &seen.unwinding["tables"];
    assert!(
        count(held, "objects_without_room") >= 1 && count(held, "rows_capacity") == 4096,
        "{held}"
    );
}

#[test]
fn record_walks_with_tables_when_asked_and_by_frame_pointers_by_default() {
    const TEST: &str = "record_walks_with_tables_when_asked_and_by_frame_pointers_by_default";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let exe = build(dir.path(), "chain-nofp", &["-fomit-frame-pointer"]);
    let workload = Workload::spawn(exe.to_str().expect("utf-8 path"), &[]);
    let root = format!("chain-nofp ({})", workload.pid());
    for (name, args, method) in [
        ("tables", &["--unwind", "tables"][..], "tables"),
        ("default", &[][..], "frame_pointers"),
    ] {
        let out = dir.path().join(name);
        let mut all_args = vec!["--window", "2s", "--no-metrics", "--no-escalate"];
        all_args.extend(args);
        let run = record_into(&out, &all_args);
        std::thread::sleep(Duration::from_secs(5));
        run.signal(libc::SIGTERM);
        run.finish(REPORT_GRACE).assert_success();
        // The first window holds the samples before the table; a later one is all walked.
        let windows = record_windows(&out);
        let last_whole = windows.iter().rev().nth(1).expect("at least two windows");
        let report = read_json(&last_whole.join("report.json"));
        assert_eq!(report["unwinding"]["cpu"], method, "{name}");
        let folded =
            std::fs::read_to_string(last_whole.join("stacks.folded")).expect("stacks.folded");
        let (samples, whole) = count_whole(&folded, &root, &CHAIN);
        eprintln!("record {name}: {whole} of {samples} samples whole");
        assert!(
            samples > 10,
            "{name}: {samples} samples of the chain in {last_whole:?}"
        );
        if method == "tables" {
            assert!(
                whole * 100 >= samples * 90,
                "{name}: {whole} of {samples} whole"
            );
        } else {
            assert!(
                whole * 100 < samples * 20,
                "{name}: {whole} of {samples} whole"
            );
        }
    }
}
