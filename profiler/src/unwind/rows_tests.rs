use std::path::Path;

use gimli::{BaseAddresses, CieOrFde, EhFrame, UnwindContext, UnwindSection};
use object::{Object as _, ObjectSection as _};
use profiler_common::{CfaRule, UnwindRow};

use super::{compile, convert, normalize, plt_threshold, row};

/// Libraries every machine of this kind has, and the test binary itself (built by rustc).
fn objects() -> Vec<std::path::PathBuf> {
    let mut objects: Vec<_> = ["libc.so.6", "libm.so.6", "libstdc++.so.6"]
        .iter()
        .map(|name| Path::new("/lib/x86_64-linux-gnu").join(name))
        .filter(|path| path.exists())
        .collect();
    assert!(objects.len() >= 2, "libc and libm must be present");
    objects.push(std::env::current_exe().unwrap());
    objects
}

/// At addresses across every frame description, the compiled rows (sorted, merged, looked up as
/// the kernel's walker does) say what gimli's own evaluation of that description up to that
/// address says.
#[test]
fn rows_match_gimlis_evaluation_at_every_sampled_address() {
    for path in objects() {
        let data = std::fs::read(&path).unwrap();
        let compiled = compile(&data[..]).unwrap();
        assert!(
            compiled.rows.len() > 1000,
            "{}: {} rows",
            path.display(),
            compiled.rows.len()
        );
        let file = object::File::parse(&*data).unwrap();
        let section = file.section_by_name(".eh_frame").unwrap();
        let eh_frame = EhFrame::new(section.data().unwrap(), gimli::RunTimeEndian::Little);
        let mut bases = BaseAddresses::default().set_eh_frame(section.address());
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let mut context = Box::new(UnwindContext::new());
        let mut entries = eh_frame.entries(&bases);
        let (mut checked, mut seed) = (0, 0x9e37_79b9_u64);
        while let Some(entry) = entries.next().unwrap() {
            let CieOrFde::Fde(partial) = entry else {
                continue;
            };
            let fde = partial.parse(EhFrame::cie_from_offset).unwrap();
            if fde.len() == 0 {
                continue;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let inside = fde.initial_address() + (seed >> 33) % fde.len();
            for address in [fde.initial_address(), inside, fde.end_address() - 1] {
                let want = fde
                    .unwind_info_for_address(&eh_frame, &bases, &mut context, address)
                    .map(|gimli_row| convert(&eh_frame, gimli_row))
                    .unwrap();
                let got = lookup(&compiled.rows, address).copied();
                assert!(
                    got.is_some_and(|got| same(&got, &want)),
                    "{} at {address:#x}: rows say {got:?}, gimli {want:?}",
                    path.display()
                );
                checked += 1;
            }
        }
        eprintln!(
            "{}: {} rows, {} unsupported, {checked} addresses checked",
            path.display(),
            compiled.rows.len(),
            compiled.unsupported
        );
        assert!(checked > 1000, "{}: {checked} addresses", path.display());
    }
}

/// Every function's entry has the return address on top of the stack: the canonical frame
/// address is rsp + 8, whatever the compiler emitted afterwards (PLT stubs aside).
#[test]
fn every_function_entry_finds_its_caller_at_rsp_plus_8() {
    let data = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let compiled = compile(&data[..]).unwrap();
    let entries: Vec<&UnwindRow> = compiled
        .rows
        .windows(2)
        .filter(|pair| pair[0].cfa == CfaRule::None as u8 && pair[1].cfa != CfaRule::None as u8)
        .map(|pair| &pair[1])
        .collect();
    assert!(entries.len() > 1000, "{} function entries", entries.len());
    let odd: Vec<_> = entries
        .iter()
        .filter(|r| {
            !(r.cfa == CfaRule::Rsp as u8 && r.cfa_offset == 8)
                && r.cfa != CfaRule::Plt as u8
                && r.cfa != CfaRule::End as u8
        })
        .collect();
    // A few hand-written entry points (signal trampolines) describe another frame.
    assert!(
        odd.len() * 100 < entries.len(),
        "{} of {}: {:?}",
        odd.len(),
        entries.len(),
        &odd[..odd.len().min(5)]
    );
}

#[test]
fn the_plt_expression_gives_its_threshold_and_nothing_else_does() {
    let plt = [
        0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
    ];
    assert_eq!(plt_threshold(&plt), Some(11));
    let mut other = plt;
    other[1] = 0x10;
    assert_eq!(plt_threshold(&other), None);
    assert_eq!(plt_threshold(&plt[..10]), None);
}

#[test]
fn a_description_starting_where_another_ends_wins_and_repeats_merge() {
    let rsp = |pc, offset| row(pc, CfaRule::Rsp, offset);
    let rows = normalize(vec![
        rsp(0x20, 8),
        row(0x30, CfaRule::None, 0),
        rsp(0x10, 8),
        rsp(0x14, 16),
        rsp(0x18, 16),
        row(0x20, CfaRule::None, 0),
    ]);
    assert_eq!(
        rows,
        vec![
            rsp(0x10, 8),
            rsp(0x14, 16),
            rsp(0x20, 8),
            row(0x30, CfaRule::None, 0)
        ]
    );
    assert_eq!(lookup(&rows, 0x1b).unwrap().cfa_offset, 16);
    assert_eq!(lookup(&rows, 0x0f), None);
    assert_eq!(lookup(&rows, 0x40).unwrap().cfa, CfaRule::None as u8);
}

#[test]
fn what_is_not_an_elf_object_is_refused() {
    assert!(matches!(
        compile(&b"not an elf"[..]),
        Err(super::CompileError::Elf(_))
    ));
}

fn same(a: &UnwindRow, b: &UnwindRow) -> bool {
    (a.cfa, a.cfa_offset, a.rbp, a.rbp_offset) == (b.cfa, b.cfa_offset, b.rbp, b.rbp_offset)
}

/// The row covering object address `address`, found as the kernel's walker finds it: the last
/// row at or before it.
fn lookup(rows: &[UnwindRow], address: u64) -> Option<&UnwindRow> {
    let after = rows.partition_point(|r| r.pc <= address);
    after.checked_sub(1).map(|i| &rows[i])
}
