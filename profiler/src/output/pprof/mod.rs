//! `profile.pb.gz`: the run's CPU and off-CPU stacks in Google's pprof format, gzip-compressed,
//! every sample labelled with its process (`pid`, `comm`, `app`), for `go tool pprof` and the
//! tools that read it.

mod proto;

use std::{collections::HashMap, io::Write as _};

use flate2::{Compression, write::GzEncoder};
use prost::Message as _;

use crate::{
    model::ProcessUsage,
    report::{AppKind, Report, Workload},
    symbolize::{Frame, Origin, Stack, Stacks},
};

/// The mapping kernel frames lie in, named as perf names it.
const KERNEL_MAPPING: &str = "[kernel.kallsyms]";

/// One process's part of the profile.
#[derive(Debug, Clone, Copy)]
pub struct ProcessProfile<'a> {
    pub pid: u32,
    pub comm: &'a str,
    /// Its application: its workload's name, else the cgroup path when known, else the comm.
    pub app: &'a str,
    /// Its container, pod, unit or session: a label of that kind's name.
    pub workload: Option<&'a Workload>,
    /// Its executable: the profile's main mapping is the busiest process's.
    pub exe: Option<&'a str>,
    /// Sample counts.
    pub cpu: &'a [Stack],
    /// Nanoseconds blocked.
    pub offcpu: &'a [Stack],
}

/// The processes of a profile and the frames and mappings their stacks index.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub processes: Vec<ProcessProfile<'a>>,
    pub stacks: &'a Stacks,
}

impl<'a> Input<'a> {
    /// The processes of `usage` (in the order of `stacks.cpu` and `stacks.offcpu`) that have
    /// stacks; only those in `pids` unless it is empty.
    pub fn new(usage: &'a [ProcessUsage], stacks: &'a Stacks, pids: &[u32]) -> Self {
        let processes = usage
            .iter()
            .zip(stacks.cpu.iter().zip(&stacks.offcpu))
            .filter(|(p, _)| pids.is_empty() || pids.contains(&p.identity.pid))
            .filter(|(_, (cpu, offcpu))| !cpu.is_empty() || !offcpu.is_empty())
            .map(|(p, (cpu, offcpu))| ProcessProfile {
                pid: p.identity.pid,
                comm: &p.identity.comm,
                app: p.identity.workload.as_ref().map_or_else(
                    || p.identity.cgroup.as_deref().unwrap_or(&p.identity.comm),
                    |w| w.name.as_str(),
                ),
                workload: p.identity.workload.as_ref(),
                exe: p.identity.exe.as_deref(),
                cpu,
                offcpu,
            })
            .collect();
        Self { processes, stacks }
    }
}

/// When and how the stacks were sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// Start of the run, nanoseconds since the Unix epoch.
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub frequency_hz: u64,
    /// Whether the off-CPU column exists: the offcpu signal ran.
    pub offcpu: bool,
}

impl Sampling {
    pub fn of(report: &Report, offcpu: bool) -> Self {
        Self {
            time_nanos: epoch_nanos(&report.started_at),
            duration_nanos: (report.duration_s * 1e9).round() as i64,
            frequency_hz: report.frequency_hz,
            offcpu,
        }
    }

    /// Nanoseconds of CPU one sample stands for.
    fn period(&self) -> i64 {
        1_000_000_000 / i64::try_from(self.frequency_hz.max(1)).unwrap_or(i64::MAX)
    }
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time; 0 (unknown) when it does not parse.
fn epoch_nanos(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map_or(0, |t| i64::try_from(t.as_nanosecond()).unwrap_or(0))
}

/// The gzip-compressed profile, at gzip's fastest level as Go's runtime/pprof writes them: on
/// fifty thousand stacks the default level took three times as long (0.8 s against 0.25 s)
/// for a file a tenth smaller.
pub fn render(sampling: &Sampling, input: &Input<'_>) -> std::io::Result<Vec<u8>> {
    let bytes = build(sampling, input).encode_to_vec();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    gzip.write_all(&bytes)?;
    gzip.finish()
}

fn build(sampling: &Sampling, input: &Input<'_>) -> proto::Profile {
    let mut builder = Builder::new(input.stacks);
    let period = sampling.period();
    let mut sample_type = vec![
        builder.value_type("samples", "count"),
        builder.value_type("cpu", "nanoseconds"),
    ];
    if sampling.offcpu {
        sample_type.push(builder.value_type("offcpu", "nanoseconds"));
    }
    let columns = sample_type.len();
    for process in &input.processes {
        let labels = builder.labels(process);
        for (frames, count) in process.cpu {
            let count = saturating(*count);
            let mut value = vec![count, count.saturating_mul(period), 0];
            value.truncate(columns);
            builder.sample(frames, value, &labels);
        }
        if sampling.offcpu {
            for (frames, ns) in process.offcpu {
                builder.sample(frames, vec![0, 0, saturating(*ns)], &labels);
            }
        }
    }
    let busiest = input
        .processes
        .iter()
        .max_by_key(|p| p.cpu.iter().map(|(_, count)| count).sum::<u64>());
    if let Some(exe) = busiest.and_then(|p| p.exe) {
        builder.put_first(exe);
    }
    let period_type = builder.value_type("cpu", "nanoseconds");
    let default_sample_type = builder.string("cpu");
    proto::Profile {
        sample_type,
        time_nanos: sampling.time_nanos,
        duration_nanos: sampling.duration_nanos,
        period_type: Some(period_type),
        period,
        // Readers show the last column unless told; CPU is what a diagnosis looks at first.
        default_sample_type,
        ..builder.profile
    }
}

fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Fills a profile's tables, each entry added the first time it is referenced.
struct Builder<'a> {
    stacks: &'a Stacks,
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    /// Frame index -> location id.
    locations: HashMap<usize, u64>,
    functions: HashMap<String, u64>,
    /// `Stacks::mappings` index -> mapping id.
    mappings: HashMap<usize, u64>,
    /// Index in `profile.mapping`, once a kernel frame is met.
    kernel_mapping: Option<usize>,
}

impl<'a> Builder<'a> {
    fn new(stacks: &'a Stacks) -> Self {
        let mut builder = Self {
            stacks,
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            locations: HashMap::new(),
            functions: HashMap::new(),
            mappings: HashMap::new(),
            kernel_mapping: None,
        };
        builder.string("");
        builder
    }

    fn string(&mut self, text: &str) -> i64 {
        if let Some(&index) = self.strings.get(text) {
            return index;
        }
        let index = saturating(self.profile.string_table.len() as u64);
        self.profile.string_table.push(text.to_owned());
        self.strings.insert(text.to_owned(), index);
        index
    }

    fn value_type(&mut self, r#type: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(r#type),
            unit: self.string(unit),
        }
    }

    fn labels(&mut self, process: &ProcessProfile<'_>) -> Vec<proto::Label> {
        let text = |builder: &mut Self, key: &str, value: &str| proto::Label {
            key: builder.string(key),
            str: builder.string(value),
            ..proto::Label::default()
        };
        let mut labels = vec![
            proto::Label {
                key: self.string("pid"),
                num: i64::from(process.pid),
                ..proto::Label::default()
            },
            text(self, "comm", process.comm),
            text(self, "app", process.app),
        ];
        if let Some(workload) = process.workload {
            let kind = AppKind::of(workload.kind).as_str();
            labels.push(text(self, kind, &workload.name));
            if let Some(pod) = &workload.pod {
                labels.push(text(self, "pod", pod));
            }
        }
        labels
    }

    /// A sample of `frames` (root first, as the symbolizer gives them).
    fn sample(&mut self, frames: &[usize], value: Vec<i64>, labels: &[proto::Label]) {
        let location_id = frames.iter().rev().map(|&f| self.location(f)).collect();
        self.profile.sample.push(proto::Sample {
            location_id,
            value,
            label: labels.to_vec(),
        });
    }

    fn location(&mut self, frame_index: usize) -> u64 {
        if let Some(&id) = self.locations.get(&frame_index) {
            return id;
        }
        let stacks = self.stacks;
        let frame = &stacks.frames[frame_index];
        let mapping_id = match frame.origin {
            Origin::File(index) => self.file_mapping(index),
            Origin::Kernel => self.kernel_mapping(frame.addr),
            Origin::Unmapped | Origin::Jit { .. } | Origin::Lost { .. } => 0,
        };
        let line = self.lines(frame);
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(proto::Location {
            id,
            mapping_id,
            address: frame.addr,
            line,
            ..proto::Location::default()
        });
        self.locations.insert(frame_index, id);
        id
    }

    /// One line per function, innermost first as pprof orders inlined calls.
    fn lines(&mut self, frame: &Frame) -> Vec<proto::Line> {
        frame
            .names
            .iter()
            .rev()
            .map(|name| proto::Line {
                function_id: self.function(name),
                ..proto::Line::default()
            })
            .collect()
    }

    fn function(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.functions.get(name) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let name_index = self.string(name);
        self.profile.function.push(proto::Function {
            id,
            name: name_index,
            system_name: name_index,
            ..proto::Function::default()
        });
        self.functions.insert(name.to_owned(), id);
        id
    }

    fn file_mapping(&mut self, index: usize) -> u64 {
        if let Some(&id) = self.mappings.get(&index) {
            return id;
        }
        let file = &self.stacks.mappings[index];
        let filename = self.string(&file.mapping.path.to_string_lossy());
        let build_id = file.build_id.as_deref().map_or(0, |id| self.string(id));
        let id = self.push_mapping(proto::Mapping {
            memory_start: file.mapping.start,
            memory_limit: file.mapping.end,
            file_offset: file.mapping.file_offset,
            filename,
            build_id,
            ..proto::Mapping::default()
        });
        self.mappings.insert(index, id);
        id
    }

    /// The kernel mapping, grown to cover `addr`: its real bounds are not read, only the
    /// addresses sampled in it.
    fn kernel_mapping(&mut self, addr: u64) -> u64 {
        let index = match self.kernel_mapping {
            Some(index) => index,
            None => {
                let filename = self.string(KERNEL_MAPPING);
                self.push_mapping(proto::Mapping {
                    memory_start: addr,
                    memory_limit: addr.saturating_add(1),
                    filename,
                    ..proto::Mapping::default()
                });
                let index = self.profile.mapping.len() - 1;
                self.kernel_mapping = Some(index);
                index
            }
        };
        let mapping = &mut self.profile.mapping[index];
        mapping.memory_start = mapping.memory_start.min(addr);
        mapping.memory_limit = mapping.memory_limit.max(addr.saturating_add(1));
        mapping.id
    }

    /// Moves the mapping of file `path` first, where readers expect "the main binary" (`go tool
    /// pprof` heads its reports with its name); a profile of many processes has none, so the
    /// busiest process's executable stands in.
    fn put_first(&mut self, path: &str) {
        let Some(&name) = self.strings.get(path) else {
            return;
        };
        let Some(index) = self.profile.mapping.iter().position(|m| m.filename == name) else {
            return;
        };
        let (first, moved) = (1, index as u64 + 1);
        self.profile.mapping.swap(0, index);
        self.profile.mapping[0].id = first;
        self.profile.mapping[index].id = moved;
        let swap = |id: &mut u64| {
            if *id == first {
                *id = moved;
            } else if *id == moved {
                *id = first;
            }
        };
        self.profile
            .location
            .iter_mut()
            .for_each(|location| swap(&mut location.mapping_id));
        self.mappings.values_mut().for_each(swap);
        self.kernel_mapping = self.kernel_mapping.map(|k| match k {
            0 => index,
            k if k == index => 0,
            k => k,
        });
    }

    fn push_mapping(&mut self, mapping: proto::Mapping) -> u64 {
        let id = self.profile.mapping.len() as u64 + 1;
        self.profile.mapping.push(proto::Mapping {
            id,
            // Frames are named already: readers must not look for the files to symbolize them.
            has_functions: true,
            has_inline_frames: true,
            ..mapping
        });
        id
    }
}

#[cfg(test)]
mod tests;
