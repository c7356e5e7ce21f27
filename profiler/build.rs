//! Builds the eBPF programs (nightly, `-Z build-std=core`, bpf-linker) and embeds them.

fn main() -> anyhow::Result<()> {
    // cargo-fuzz compiles with `--cfg fuzzing`. Fuzz targets call parsers only and never load
    // BPF, so that build embeds no object (see probes) instead of building the kernel crate a
    // second time, with nightly and build-std, in the fuzz target directory.
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        return Ok(());
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiler-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "profiler-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
