//! Round trips of `profile.pb.gz` through prost's decoder.

use std::{io::Read as _, path::PathBuf};

use flate2::read::GzDecoder;

use super::*;
use crate::{
    model::{Mapping, ProcessIdentity},
    symbolize::MappedFile,
};

const SAMPLING: Sampling = Sampling {
    time_nanos: 1_795_503_600_000_000_000,
    duration_nanos: 5_000_000_000,
    frequency_hz: 100,
    offcpu: true,
};

/// `main` with `spin` inlined into it, over a kernel frame; a stack whose user half was
/// lost; and `main` blocked in `schedule`.
fn stacks() -> Stacks {
    let frame = |addr, origin, names: &[&str]| Frame {
        addr,
        origin,
        names: names.iter().map(|&n| n.to_owned()).collect(),
    };
    Stacks {
        cpu: vec![vec![(vec![0, 1], 3), (vec![3], 1)]],
        offcpu: vec![vec![(vec![0, 2], 5_000)]],
        frames: vec![
            frame(0x1010, Origin::File(0), &["main", "spin"]),
            frame(0xffff_ffff_8100_0010, Origin::Kernel, &["irq_exit"]),
            frame(0xffff_ffff_8100_0020, Origin::Kernel, &["schedule"]),
            frame(0, Origin::Lost { kernel: false }, &["[lost stack]"]),
        ],
        mappings: vec![MappedFile {
            mapping: Mapping {
                start: 0x1000,
                end: 0x2000,
                file_offset: 0x400,
                path: PathBuf::from("/usr/bin/app"),
                held: None,
            },
            build_id: Some("00ff".to_owned()),
        }],
    }
}

fn input(stacks: &Stacks) -> Input<'_> {
    Input {
        processes: vec![ProcessProfile {
            pid: 42,
            comm: "app",
            app: "/system.slice/app.service",
            workload: None,
            exe: Some("/usr/bin/app"),
            cpu: &stacks.cpu[0],
            offcpu: &stacks.offcpu[0],
        }],
        stacks,
    }
}

fn decode(gz: &[u8]) -> proto::Profile {
    let mut bytes = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut bytes).unwrap();
    proto::Profile::decode(bytes.as_slice()).unwrap()
}

fn text(profile: &proto::Profile, index: i64) -> &str {
    &profile.string_table[usize::try_from(index).unwrap()]
}

fn types(profile: &proto::Profile) -> Vec<(&str, &str)> {
    profile
        .sample_type
        .iter()
        .map(|t| (text(profile, t.r#type), text(profile, t.unit)))
        .collect()
}

/// Function names of a sample's locations, leaf first, each location's innermost first.
fn names(profile: &proto::Profile, sample: &proto::Sample) -> Vec<Vec<String>> {
    sample
        .location_id
        .iter()
        .map(|&id| {
            let location = &profile.location[usize::try_from(id - 1).unwrap()];
            assert_eq!(location.id, id);
            location
                .line
                .iter()
                .map(|line| {
                    let function =
                        &profile.function[usize::try_from(line.function_id - 1).unwrap()];
                    assert_eq!(function.id, line.function_id);
                    text(profile, function.name).to_owned()
                })
                .collect()
        })
        .collect()
}

fn mapping_of(profile: &proto::Profile, location_id: u64) -> Option<&proto::Mapping> {
    let location = &profile.location[usize::try_from(location_id - 1).unwrap()];
    profile.mapping.iter().find(|m| m.id == location.mapping_id)
}

#[test]
fn decodes_with_strings_types_labels_and_inlined_lines() {
    let stacks = stacks();
    let profile = decode(&render(&SAMPLING, &input(&stacks)).unwrap());
    assert_eq!(profile.string_table[0], "");
    assert_eq!(
        types(&profile),
        [
            ("samples", "count"),
            ("cpu", "nanoseconds"),
            ("offcpu", "nanoseconds")
        ]
    );
    assert_eq!(text(&profile, profile.default_sample_type), "cpu");
    let period_type = profile.period_type.as_ref().unwrap();
    assert_eq!(text(&profile, period_type.r#type), "cpu");
    assert_eq!(text(&profile, period_type.unit), "nanoseconds");
    assert_eq!(profile.period, 10_000_000);
    assert_eq!(profile.time_nanos, SAMPLING.time_nanos);
    assert_eq!(profile.duration_nanos, 5_000_000_000);

    let values: Vec<&[i64]> = profile.sample.iter().map(|s| s.value.as_slice()).collect();
    assert_eq!(
        values,
        [&[3, 30_000_000, 0][..], &[1, 10_000_000, 0], &[0, 0, 5_000]]
    );
    for sample in &profile.sample {
        let labels: Vec<(&str, &str, i64)> = sample
            .label
            .iter()
            .map(|l| (text(&profile, l.key), text(&profile, l.str), l.num))
            .collect();
        assert_eq!(
            labels,
            [
                ("pid", "", 42),
                ("comm", "app", 0),
                ("app", "/system.slice/app.service", 0)
            ]
        );
    }
    assert_eq!(
        names(&profile, &profile.sample[0]),
        [vec!["irq_exit"], vec!["spin", "main"]]
    );
    assert_eq!(names(&profile, &profile.sample[1]), [vec!["[lost stack]"]]);
    assert_eq!(
        names(&profile, &profile.sample[2]),
        [vec!["schedule"], vec!["spin", "main"]]
    );
    // The user frame is one location shared by a CPU and an off-CPU sample.
    assert_eq!(
        profile.sample[0].location_id[1],
        profile.sample[2].location_id[1]
    );
    assert_eq!(profile.location.len(), 4);
    assert_eq!(profile.function.len(), 5);
}

#[test]
fn a_container_s_samples_carry_its_name_and_pod() {
    let stacks = stacks();
    let workload = Workload {
        kind: crate::report::WorkloadKind::Container,
        name: "web".to_owned(),
        id: Some("3f2a1b9c4d5e".to_owned()),
        runtime: None,
        pod: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned()),
    };
    let mut input = input(&stacks);
    input.processes[0].workload = Some(&workload);
    let profile = decode(&render(&SAMPLING, &input).unwrap());
    let labels: Vec<(&str, &str)> = profile.sample[0]
        .label
        .iter()
        .skip(3)
        .map(|l| (text(&profile, l.key), text(&profile, l.str)))
        .collect();
    assert_eq!(
        labels,
        [
            ("container", "web"),
            ("pod", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        ]
    );
}

#[test]
fn frames_point_into_their_mappings() {
    let stacks = stacks();
    let profile = decode(&render(&SAMPLING, &input(&stacks)).unwrap());
    let user = profile.sample[0].location_id[1];
    let file = mapping_of(&profile, user).unwrap();
    assert_eq!(text(&profile, file.filename), "/usr/bin/app");
    assert_eq!(text(&profile, file.build_id), "00ff");
    assert_eq!(
        (file.memory_start, file.memory_limit, file.file_offset),
        (0x1000, 0x2000, 0x400)
    );
    assert!(file.has_functions);
    assert_eq!(
        profile.location[usize::try_from(user - 1).unwrap()].address,
        0x1010
    );

    let kernel = mapping_of(&profile, profile.sample[0].location_id[0]).unwrap();
    assert_eq!(text(&profile, kernel.filename), KERNEL_MAPPING);
    assert_eq!(kernel.build_id, 0);
    assert_eq!(
        (kernel.memory_start, kernel.memory_limit),
        (0xffff_ffff_8100_0010, 0xffff_ffff_8100_0021)
    );
    assert_eq!(
        mapping_of(&profile, profile.sample[2].location_id[0]).map(|m| m.id),
        Some(kernel.id)
    );
    assert!(mapping_of(&profile, profile.sample[1].location_id[0]).is_none());
    assert_eq!(profile.mapping.len(), 2);
    // Met after the kernel's (leaf first), yet first: the busiest process's executable.
    assert_eq!((profile.mapping[0].id, file.id), (1, 1));
    assert_eq!(profile.mapping[1].id, 2);
}

#[test]
fn without_offcpu_two_columns_and_no_blocked_samples() {
    let stacks = stacks();
    let sampling = Sampling {
        offcpu: false,
        ..SAMPLING
    };
    let profile = decode(&render(&sampling, &input(&stacks)).unwrap());
    assert_eq!(
        types(&profile),
        [("samples", "count"), ("cpu", "nanoseconds")]
    );
    assert_eq!(profile.sample.len(), 2);
    assert!(profile.sample.iter().all(|s| s.value.len() == 2));
    assert!(!profile.string_table.iter().any(|s| s == "schedule"));
}

#[test]
fn processes_filtered_by_pid_and_named_by_cgroup_else_comm() {
    let stacks = Stacks {
        cpu: vec![vec![(vec![0], 1)], vec![(vec![0], 2)], vec![]],
        offcpu: vec![vec![], vec![], vec![]],
        ..stacks()
    };
    let with_cgroup = ProcessIdentity {
        cgroup: Some("/user.slice".to_owned()),
        ..ProcessIdentity::exited_unknown(1, Some("a"))
    };
    let usage = [
        ProcessUsage::new(with_cgroup),
        ProcessUsage::new(ProcessIdentity::exited_unknown(2, Some("b"))),
        ProcessUsage::new(ProcessIdentity::exited_unknown(3, Some("idle"))),
    ];
    let all = Input::new(&usage, &stacks, &[]);
    let apps: Vec<(u32, &str)> = all.processes.iter().map(|p| (p.pid, p.app)).collect();
    assert_eq!(apps, [(1, "/user.slice"), (2, "b")]);
    let only = Input::new(&usage, &stacks, &[2]);
    assert_eq!(only.processes.len(), 1);
    assert_eq!(only.processes[0].cpu, &[(vec![0], 2)]);
}

#[test]
fn start_time_from_rfc3339() {
    assert_eq!(
        epoch_nanos("2026-11-24T07:00:00Z"),
        1_795_503_600_000_000_000
    );
    assert_eq!(
        epoch_nanos("2026-11-24T07:00:00.25Z"),
        1_795_503_600_250_000_000
    );
    assert_eq!(epoch_nanos("yesterday"), 0);
}
