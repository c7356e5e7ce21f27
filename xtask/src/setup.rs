//! `cargo xtask setup`: installs, idempotently, what a fresh Debian machine with rustup lacks.

use std::{
    env, fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

const BPF_LINKER_VERSION: &str = "0.13.0";
/// Records which libLLVM the installed bpf-linker links, so a nightly that moves to another LLVM
/// triggers a rebuild even though the bpf-linker version is unchanged.
const STAMP_FILE: &str = ".profiler-bpf-linker-llvm";
/// The `LLVM_PREFIX` the bpf-linker build sees. It lives next to the installed binary rather than
/// under `target/` because bpf-linker's build bakes `<prefix>/lib` in as the binary's RUNPATH, so
/// a `cargo clean` would otherwise break the installed linker.
const LLVM_PREFIX_DIR: &str = "profiler-llvm-prefix";

/// What a command needs installed besides the toolchains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Building the profiler and running it: the nightly `rust-src` and bpf-linker only.
    Build,
    /// And the real clients the end-to-end tests drive ([`TEST_TOOLS`]).
    Test,
    /// And the benchmarks' peers and workloads ([`BENCH_TOOLS`]).
    Bench,
}

pub fn run(needs: Needs) -> Result<()> {
    if util::find_in_path("rustup").is_none() {
        bail!(
            "rustup is not on PATH. Install it (https://rustup.rs: `curl --proto '=https' \
             --tlsv1.2 -sSf https://sh.rustup.rs | sh`), open a new shell, then rerun \
             `cargo xtask setup`"
        );
    }
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    let mut tools = Vec::new();
    if needs != Needs::Build {
        tools.extend(TEST_TOOLS);
    }
    if needs == Needs::Bench {
        tools.extend(BENCH_TOOLS);
    }
    ensure_packages(&tools)
}

fn ensure_rust_src() -> Result<()> {
    const ITEM: &str = "rust-src (nightly)";
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("could not run rustup")?;
    if !installed.status.success() {
        status(ITEM, "installing… (the nightly toolchain is missing too)");
        return util::run_step_quiet_stdout(
            "setup: install nightly",
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]),
        );
    }
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == "rust-src")
    {
        status(ITEM, "ok");
        return Ok(());
    }
    status(ITEM, "installing…");
    util::run_step_quiet_stdout(
        "setup: install rust-src",
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
    )
}

/// The nightly toolchain's own libLLVM, which bpf-linker must link so its bitcode matches rustc's.
#[derive(Debug)]
struct NightlyLlvm {
    major: String,
    library: PathBuf,
    file_name: String,
}

impl NightlyLlvm {
    fn detect() -> Result<Self> {
        let version =
            util::stdout_of(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"]))?;
        let major = version
            .lines()
            .find_map(|line| line.strip_prefix("LLVM version:"))
            .and_then(|llvm| llvm.trim().split('.').next())
            .filter(|major| !major.is_empty())
            .with_context(|| format!("`rustc +nightly -vV` names no LLVM version:\n{version}"))?
            .to_owned();
        let sysroot = util::stdout_of(
            Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]),
        )?;
        let lib_dir = Path::new(sysroot.trim()).join("lib");
        let wanted = format!("libLLVM.so.{major}.");
        let mut candidates = fs::read_dir(&lib_dir)
            .with_context(|| format!("could not list {}", lib_dir.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(&wanted))
            .collect::<Vec<_>>();
        candidates.sort();
        let file_name = candidates.pop().with_context(|| {
            format!(
                "no {wanted}* in {}: is the nightly toolchain complete?",
                lib_dir.display()
            )
        })?;
        Ok(Self {
            major,
            library: lib_dir.join(&file_name),
            file_name,
        })
    }
}

fn ensure_bpf_linker() -> Result<()> {
    let llvm = NightlyLlvm::detect()?;
    let item = format!("bpf-linker {BPF_LINKER_VERSION} (LLVM {})", llvm.major);
    let root = install_root()?;
    let prefix = root.join(LLVM_PREFIX_DIR);
    // Refreshed on every run: cheap, and repairs an installed linker whose RUNPATH links were
    // deleted without forcing a rebuild.
    link_llvm_prefix(&prefix.join("lib"), &llvm)?;
    let binary = installed_bpf_linker(&root);
    let stamp = root.join(STAMP_FILE);
    if is_current(&binary, &stamp, &llvm) {
        status(&item, "ok");
        warn_if_shadowed(&root);
        return Ok(());
    }

    status(&item, "installing…");
    let mut install = util::cargo();
    install
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        // Without --force cargo skips a same-version install built against another libLLVM.
        .args(["--locked", "--force", "--no-default-features", "--features"])
        .arg(format!("llvm-{}", llvm.major))
        .env("LLVM_PREFIX", &prefix)
        // Outside the workspace, so its .cargo/config.toml (rustflags) stays out of the tool.
        .current_dir(&prefix);
    util::run_step_quiet_stdout("setup: install bpf-linker", &mut install)?;

    let installed = root.join("bin").join("bpf-linker");
    if !reports_version(&installed) {
        bail!(
            "{} does not report version {BPF_LINKER_VERSION} after installing it",
            installed.display()
        );
    }
    fs::write(&stamp, format!("{}\n", llvm.file_name))
        .with_context(|| format!("could not write {}", stamp.display()))?;
    warn_if_shadowed(&root);
    Ok(())
}

/// Where `cargo install` puts binaries, minus `install.root` from cargo config files, which this
/// project does not use.
fn install_root() -> Result<PathBuf> {
    for var in ["CARGO_INSTALL_ROOT", "CARGO_HOME"] {
        if let Some(root) = env::var_os(var).filter(|root| !root.is_empty()) {
            return Ok(PathBuf::from(root));
        }
    }
    let home = env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(Path::new(&home).join(".cargo"))
}

fn installed_bpf_linker(root: &Path) -> PathBuf {
    let in_root = root.join("bin").join("bpf-linker");
    if env::var_os("CARGO_INSTALL_ROOT").is_some_and(|root| !root.is_empty()) {
        return in_root;
    }
    util::find_in_path("bpf-linker").unwrap_or(in_root)
}

fn is_current(binary: &Path, stamp: &Path, llvm: &NightlyLlvm) -> bool {
    let stamped = fs::read_to_string(stamp).unwrap_or_default();
    stamped.trim() == llvm.file_name && reports_version(binary)
}

/// Also proves the binary still loads its libLLVM, since `--version` runs after dynamic linking.
fn reports_version(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|version| version == BPF_LINKER_VERSION)
        })
}

/// bpf-linker's build wants `<prefix>/lib/libLLVM.so`, and the binary it produces asks the
/// loader for the versioned soname, so both names point at the toolchain's library.
fn link_llvm_prefix(lib_dir: &Path, llvm: &NightlyLlvm) -> Result<()> {
    fs::create_dir_all(lib_dir)
        .with_context(|| format!("could not create {}", lib_dir.display()))?;
    for entry in fs::read_dir(lib_dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        // Links to a previous nightly's LLVM would only confuse the next build.
        if name.starts_with("libLLVM.so.") && *name != llvm.file_name {
            remove_if_present(&lib_dir.join(&*name))?;
        }
    }
    for name in ["libLLVM.so", llvm.file_name.as_str()] {
        let link = lib_dir.join(name);
        if fs::read_link(&link).is_ok_and(|target| target == llvm.library) {
            continue;
        }
        remove_if_present(&link)?;
        symlink(&llvm.library, &link).with_context(|| {
            format!(
                "could not link {} to {}",
                link.display(),
                llvm.library.display()
            )
        })?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The eBPF build finds bpf-linker through PATH, so installing it elsewhere needs a hint.
fn warn_if_shadowed(root: &Path) {
    let ours = root.join("bin").join("bpf-linker");
    let on_path = util::find_in_path("bpf-linker");
    let same = on_path
        .as_ref()
        .is_some_and(|found| fs::canonicalize(found).ok() == fs::canonicalize(&ours).ok());
    if !same {
        let found = on_path.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
        eprintln!(
            "setup: note: the eBPF build uses the bpf-linker on PATH ({found}), not {}; put {} \
             first on PATH",
            ours.display(),
            root.join("bin").display()
        );
    }
}

/// The real clients the end-to-end tests drive besides the profiler: `bpftool` (no BPF program
/// outlives a killed recorder), a Prometheus server scraping the metrics, `go tool pprof`
/// reading `profile.pb.gz`, `tmux` as a real terminal for `profiler top`, and headless
/// Chromium rendering `report.html`, `perf` recording the same workload as the profiler for the
/// fidelity test, `stress-ng`, the memory hog of the verdict's scenarios, `redis-server`, the
/// service `--victim` is pointed at, and `node`, a JIT runtime writing a perf map; each command,
/// and the Debian package providing it.
const TEST_TOOLS: [(&str, &str); 10] = [
    ("bpftool", "bpftool"),
    ("perf", "linux-perf"),
    ("prometheus", "prometheus"),
    ("go", "golang-go"),
    ("tmux", "tmux"),
    ("chromium", "chromium"),
    ("stress-ng", "stress-ng"),
    ("redis-server", "redis-server"),
    ("node", "nodejs"),
    // Builds the C chain of tests/tests/diagnose_unwind.rs without frame pointers.
    ("gcc", "gcc"),
];

/// The benchmarks' peers and workloads, as [`TEST_TOOLS`]: redis-server (a test tool) and
/// redis-benchmark (redis-tools) are the messaging workload of `cargo xtask bench redis`; GNU
/// time measures `profiler flamegraph`'s peak memory in `cargo xtask bench render`.
const BENCH_TOOLS: [(&str, &str); 4] = [
    ("bpftrace", "bpftrace"),
    ("syscount", "libbpf-tools"),
    ("redis-benchmark", "redis-tools"),
    ("time", "time"),
];

/// Installs the packages of whichever `tools` are missing, in one apt-get run.
pub fn ensure_packages(tools: &[(&str, &str)]) -> Result<()> {
    let mut missing = Vec::new();
    for &(command, package) in tools {
        let item = format!("{command} ({package})");
        if util::find_command(command).is_some() {
            status(&item, "ok");
        } else {
            status(&item, "installing…");
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // A fresh image may have no package lists at all; one update serves every package.
    let mut update = util::privileged("apt-get")?;
    update.arg("update");
    util::run_step_quiet_stdout("setup: apt-get update", &mut update)?;
    let mut install = util::privileged("apt-get")?;
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    util::run_step_quiet_stdout("setup: install packages", &mut install)?;
    for &(command, package) in tools {
        if util::find_command(command).is_none() {
            bail!("{package} is installed but `{command}` is still not found");
        }
    }
    Ok(())
}

/// On stderr, because `cargo xtask run` keeps stdout for the profiler's own output.
fn status(item: &str, state: &str) {
    eprintln!("setup: {item}: {state}");
}
