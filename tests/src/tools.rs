//! The real clients and tools the tests drive, found and run the same way by every test: Go's
//! `pprof`, `stress-ng`, `node`, and a free port for a server under test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Workload;

/// A TCP port on 127.0.0.1 free right now, for a server the test starts (a recorder's
/// `--metrics`, Prometheus): the default ports may be taken by another run on the host.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// `go` on PATH, else where Debian's golang-go puts it.
pub fn find_go() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/lib/go/bin")])
        .map(|dir| dir.join("go"))
        .find(|go| go.is_file())
}

/// `stress-ng` on PATH, which `cargo xtask setup` installs; a test that needs it fails without.
pub fn stress_ng() -> String {
    on_path("stress-ng")
}

/// `node` (Debian's nodejs) on PATH, which `cargo xtask setup` installs: a real JIT runtime.
pub fn node() -> String {
    on_path("node")
}

fn on_path(command: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{command} is not on PATH: run `cargo xtask setup`"))
        .to_string_lossy()
        .into_owned()
}

/// A `redis-server` on 127.0.0.1:`port`, persistence off, accepting connections when this
/// returns: the messaging service the victim is. `cargo xtask setup` installs it.
pub fn redis_server(port: u16) -> Workload {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let exe = std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("redis-server is not on PATH: run `cargo xtask setup`"));
    let exe = exe.to_string_lossy();
    let port_arg = port.to_string();
    let args = [
        "--port",
        &port_arg,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    let server = Workload::spawn(&exe, &args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server does not accept on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server
}

/// A `stress-ng` memory hog: one worker (`stress-ng-vm`) that allocates and populates `mib` MiB
/// at once, then holds it until killed; on CPU `cpu` when given.
pub fn stress_ng_memory_hog(mib: u64, cpu: Option<usize>) -> Workload {
    let bytes = format!("{mib}M");
    let cpu = cpu.map(|cpu| cpu.to_string());
    let mut args: Vec<&str> = Vec::new();
    if let Some(cpu) = &cpu {
        args.extend(["--taskset", cpu]);
    }
    args.extend([
        "--vm",
        "1",
        "--vm-bytes",
        &bytes,
        "--vm-method",
        "write64",
        "--vm-populate",
        "--vm-hang",
        "0",
        "--timeout",
        "60",
    ]);
    Workload::spawn(&stress_ng(), &args)
}

/// Runs `go tool pprof <report> <profile>` and returns its stdout. Everything go or pprof could
/// write or fetch is kept local: no toolchain download, no module proxy, caches and home in
/// `home`, no user go.env.
pub fn go_pprof(go: &Path, home: &Path, report: &str, profile: &Path) -> String {
    let output = Command::new(go)
        .args(["tool", "pprof", report])
        .arg(profile)
        .current_dir(home)
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOENV", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("PPROF_TMPDIR", home)
        .env("PPROF_BINARY_PATH", home)
        .output()
        .unwrap_or_else(|err| panic!("running {} tool pprof: {err}", go.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`go tool pprof {report}` failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
