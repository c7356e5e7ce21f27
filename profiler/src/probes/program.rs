//! Loading one program of the object and attaching it to one kind of kernel hook.

use anyhow::Context as _;
use aya::{
    Ebpf,
    programs::{
        PerfEvent, Program, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Program> {
    ebpf.program_mut(name)
        .with_context(|| format!("eBPF object has no program {name}"))
}

/// A raw tracepoint program: needs no tracefs.
pub fn raw(ebpf: &mut Ebpf, name: &str, event: &str) -> anyhow::Result<()> {
    let prog: &mut RawTracePoint = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    prog.attach(event)
        .with_context(|| format!("attaching raw tracepoint {event}"))?;
    Ok(())
}

/// A classic tracepoint program: its event id is read from tracefs.
pub fn tracepoint(ebpf: &mut Ebpf, name: &str, category: &str, event: &str) -> anyhow::Result<()> {
    let prog: &mut TracePoint = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    prog.attach(category, event)
        .with_context(|| format!("attaching tracepoint {category}:{event}"))?;
    Ok(())
}

/// A program on one software perf event per CPU, all processes.
pub fn perf_event(
    ebpf: &mut Ebpf,
    name: &str,
    cpus: &[u32],
    event: SoftwareEvent,
    policy: SamplePolicy,
) -> anyhow::Result<()> {
    let prog: &mut PerfEvent = program(ebpf, name)?.try_into()?;
    prog.load()
        .with_context(|| format!("verifier rejected {name}"))?;
    for &cpu in cpus {
        prog.attach(
            PerfEventConfig::Software(event),
            PerfEventScope::AllProcessesOneCpu { cpu },
            policy,
            false,
        )
        .with_context(|| format!("opening the {event:?} perf event on CPU {cpu}"))?;
    }
    Ok(())
}

/// Verifier logs run to many lines; the report and the warning keep the first.
pub fn first_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
