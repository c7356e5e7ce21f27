//! `profiler`: who is eating this host, and where in its code. The binary's entry point.

fn main() -> std::process::ExitCode {
    profiler::main()
}
