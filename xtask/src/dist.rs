//! `cargo xtask dist`: a Debian package of the profiler (the binary with its eBPF programs
//! embedded, a man page per subcommand, bash/zsh/fish completions, the systemd unit and the
//! docs), staged under target/dist and built with dpkg-deb; `--check` installs it and tries it.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{setup, util};

/// The package's name, and the binary's.
const NAME: &str = "profiler";
/// Pages: `profiler(1)` and one per subcommand.
const SUBCOMMANDS: [&str; 5] = ["diagnose", "doctor", "record", "top", "flamegraph"];
/// The unit as the repository ships it, for an install from source into /usr/local/bin.
const UNIT: &str = "dist/profiler-record.service";
/// Documentation installed under /usr/share/doc/profiler.
const DOCS: [&str; 8] = [
    "README.md",
    "docs/report.md",
    "docs/report.schema.json",
    "docs/unwinding.md",
    "docs/verdict.md",
    "docs/SECURITY.md",
    "docs/ARCHITECTURE.md",
    "bench/results.md",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Then install it with dpkg (as root, via sudo), check that the man pages render, that the
    /// bash completion loads and that `profiler doctor` runs from /usr/bin, and remove it.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let deb = build()?;
    println!("{}", deb.display());
    if args.check {
        check(&deb)?;
    }
    Ok(())
}

/// Builds the package; returns its path.
fn build() -> Result<PathBuf> {
    setup::run(setup::Needs::Build)?;
    let workspace = util::workspace_root();
    util::run_step_quiet_stdout(
        "build profiler",
        util::cargo()
            .args(["build", "--release", "-p", NAME])
            .current_dir(&workspace),
    )?;
    let built = util::target_dir()?.join("release").join(NAME);
    let version = version(&built)?;
    let arch = util::stdout_of(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    let dist = util::target_dir()?.join("dist");
    let stage = dist.join(format!("{NAME}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }

    let bin = stage.join("usr/bin").join(NAME);
    make_dirs(bin.parent().expect("has a parent"))?;
    // The debug info is for the profiler's developers; the package is a tenth the size without.
    setup::ensure_packages(&[("objcopy", "binutils"), ("dpkg-deb", "dpkg")])?;
    util::run_step(
        "strip debug info",
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(&built)
            .arg(&bin),
    )?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;

    let man = stage.join("usr/share/man/man1");
    make_dirs(&man)?;
    let pages = std::iter::once(None).chain(SUBCOMMANDS.map(Some));
    for subcommand in pages {
        let mut cmd = Command::new(&built);
        cmd.args(["generate", "man"]).args(subcommand);
        let page = util::stdout_of(&mut cmd)?;
        let name = subcommand.map_or_else(|| NAME.to_owned(), |s| format!("{NAME}-{s}"));
        gzip_into(&man.join(format!("{name}.1.gz")), page.as_bytes())?;
    }

    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/profiler"),
        ("zsh", "usr/share/zsh/vendor-completions/_profiler"),
        ("fish", "usr/share/fish/vendor_completions.d/profiler.fish"),
    ] {
        let script =
            util::stdout_of(Command::new(&built).args(["generate", "completions", shell]))?;
        write_file(&stage.join(path), script.as_bytes())?;
    }

    let unit =
        fs::read_to_string(workspace.join(UNIT)).with_context(|| format!("reading {UNIT}"))?;
    let unit = packaged_unit(&unit);
    write_file(
        &stage.join("lib/systemd/system/profiler-record.service"),
        unit.as_bytes(),
    )?;

    let doc = stage.join("usr/share/doc").join(NAME);
    for file in DOCS {
        let bytes = fs::read(workspace.join(file)).with_context(|| format!("reading {file}"))?;
        let name = Path::new(file).file_name().expect("a file name");
        write_file(&doc.join(name), &bytes)?;
    }
    write_file(&doc.join("copyright"), COPYRIGHT.as_bytes())?;

    open_dirs(&stage)?;
    let control = control(&version, &arch, installed_kib(&stage)?);
    write_file(&stage.join("DEBIAN/control"), control.as_bytes())?;
    for (script, text) in MAINTAINER_SCRIPTS {
        let path = stage.join("DEBIAN").join(script);
        write_file(&path, text.as_bytes())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    let deb = dist.join(format!("{NAME}_{version}_{arch}.deb"));
    util::run_step_quiet_stdout(
        "dpkg-deb",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// The version `profiler --version` gives (`profiler 0.1.0`).
fn version(bin: &Path) -> Result<String> {
    let text = util::stdout_of(Command::new(bin).arg("--version"))?;
    match text.split_whitespace().nth(1) {
        Some(version) => Ok(version.to_owned()),
        None => bail!("`{} --version` printed {text:?}", bin.display()),
    }
}

/// The repository's unit with the package's paths: the binary in /usr/bin, installed by dpkg.
fn packaged_unit(unit: &str) -> String {
    let body = unit
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let header = "# profiler record as a system service: continuous low-overhead profiling of this \
                  host.\n#\n# Installed by the profiler package, not enabled: `systemctl enable --now \
                  profiler-record`.\n# Windows land in /var/lib/profiler (StateDirectory), \
                  metrics on 127.0.0.1:9464, alerts in\n# /var/lib/profiler/alerts.jsonl and the \
                  journal.\n";
    format!(
        "{header}{}\n",
        body.replace("/usr/local/bin/profiler", "/usr/bin/profiler")
    )
}

fn control(version: &str, arch: &str, installed_kib: u64) -> String {
    format!(
        "Package: {NAME}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: profiler developers <profiler@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= 2.34), libgcc-s1\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: https://github.com/profiler/profiler\n\
         Description: eBPF per-process resource profiler\n \
         Who is eating this host, and where in its code: samples CPU stacks and counts\n \
         scheduler, syscall, block IO and network activity per process with eBPF, and\n \
         names the suspects (diagnose, top), records continuously with Prometheus\n \
         metrics and alerts (record), and exports flamegraphs (folded, SVG, pprof).\n"
    )
}

/// systemd learns of the unit on install and forgets it on removal, and a running recorder is
/// stopped before its binary goes; nothing is enabled or started. Each does nothing where
/// systemd is not running (a container, a chroot).
const MAINTAINER_SCRIPTS: [(&str, &str); 3] = [
    (
        "postinst",
        "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n",
    ),
    (
        "prerm",
        "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then \
         systemctl stop profiler-record.service || true; fi\n",
    ),
    (
        "postrm",
        "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n",
    ),
];

const COPYRIGHT: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
Upstream-Name: profiler\n\n\
Files: *\n\
License: MIT or Apache-2.0\n";

/// The staged tree's size in KiB, as dpkg wants it in `Installed-Size`.
fn installed_kib(stage: &Path) -> Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(&entry.path(), total)?;
            } else {
                *total += meta.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}

fn make_dirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Every directory of the staged tree 0755, whatever the umask: a package's directories are
/// world-readable.
fn open_dirs(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_dirs(&entry.path())?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    make_dirs(path.parent().expect("has a parent"))?;
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// `gzip -9n`, as Debian's man pages are compressed (no name or time stamp: reproducible).
fn gzip_into(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .arg("-9n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting gzip")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(bytes)
        .context("writing to gzip")?;
    let output = child.wait_with_output().context("waiting for gzip")?;
    if !output.status.success() {
        bail!("gzip exited with {}", output.status);
    }
    write_file(path, &output.stdout)
}

/// Installs the package, tries what it installed, and removes it whatever the outcome.
fn check(deb: &Path) -> Result<()> {
    // What trying it takes, on a minimal machine too.
    setup::ensure_packages(&[("man", "man-db")])?;
    let status = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Status}", NAME])
        .output()
        .context("running dpkg-query")?;
    if String::from_utf8_lossy(&status.stdout).contains("installed") {
        bail!(
            "a {NAME} package is installed on this machine already; --check would replace and \
             remove it: remove it first (dpkg --purge {NAME}) or build without --check"
        );
    }
    let installed = util::run_step(
        "install the package",
        util::privileged("dpkg")?.arg("--install").arg(deb),
    );
    let tried = installed.and_then(|()| try_installed());
    // Whatever happened: a failed install leaves the package unpacked or half-configured.
    let removed = util::run_step(
        "remove the package",
        util::privileged("dpkg")?.args(["--purge", NAME]),
    );
    tried.and(removed)?;
    eprintln!(
        "dist: {} installs, its man pages render, its completion loads, doctor runs",
        deb.display()
    );
    Ok(())
}

fn try_installed() -> Result<()> {
    for page in std::iter::once(NAME.to_owned()).chain(SUBCOMMANDS.map(|s| format!("{NAME}-{s}"))) {
        let text = util::stdout_of(
            Command::new("man")
                .args(["--pager=cat", &page])
                .env("MANWIDTH", "80"),
        )?;
        // Justified: the NAME line's words are spread with extra spaces.
        let words = text.replace('‐', "-");
        let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
        let name_line = format!("{page} - ");
        if !words.contains(&name_line) {
            bail!("`man {page}` does not show its NAME line `{name_line}…`:\n{text}");
        }
    }
    let completion = util::stdout_of(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/profiler && complete -p profiler",
    ]))?;
    if !completion.contains("profiler") {
        bail!("bash did not register a completion for profiler: {completion}");
    }
    // `doctor` says what this host can do; its exit code says whether every signal can run, which
    // is the host's business here: it must run and print its checks from /usr/bin.
    let doctor = util::privileged("/usr/bin/profiler")?
        .arg("doctor")
        .output()
        .context("running /usr/bin/profiler doctor")?;
    let text = String::from_utf8_lossy(&doctor.stdout);
    if text.trim().is_empty() {
        bail!(
            "/usr/bin/profiler doctor printed nothing ({}): {}",
            doctor.status,
            String::from_utf8_lossy(&doctor.stderr)
        );
    }
    Ok(())
}
