//! Compiles an object's call frame information (`.eh_frame`, else `.debug_frame`) into the rows
//! the kernel's stack walker reads: for each address, where the caller's frame and `rbp` are.

use std::time::{Duration, Instant};

use gimli::{
    BaseAddresses, CfaRule as GimliCfa, CieOrFde, DebugFrame, EhFrame, EndianSlice, RegisterRule,
    RunTimeEndian, UnwindContext, UnwindSection, UnwindTableRow, X86_64,
};
use object::{
    Endianness, ReadRef,
    elf::{EM_X86_64, FileHeader64, PF_X, PT_LOAD},
    read::elf::{FileHeader as _, ProgramHeader as _, SectionHeader as _},
};
use profiler_common::{CfaRule, RbpRule, UnwindRow};

use super::store::Segment;

/// Rows of one object at most, counted as they are made, before equal neighbours merge (32 MiB
/// while compiling): the largest Debian libraries make a few hundred thousand.
pub const MAX_OBJECT_ROWS: usize = 2 << 20;

/// Bytes of a frame section read at most: the objects are anybody's files, and a sparse one
/// can claim any size.
pub const MAX_SECTION_BYTES: u64 = 64 << 20;

/// Section headers read at most (real objects have a few dozen).
const MAX_SECTIONS: usize = 1024;

/// How long one object may take: its information is anybody's, and gimli evaluates a CIE's
/// initial instructions again for each of its descriptions.
pub const COMPILE_BUDGET: Duration = Duration::from_secs(3);

/// Why an object has no table.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("not a readable ELF object: {0}")]
    Elf(#[from] object::Error),
    #[error("not an x86_64 ELF object")]
    Architecture,
    #[error("{0} section headers, more than the {MAX_SECTIONS} read of one object")]
    TooManySections(usize),
    #[error("no .eh_frame or .debug_frame section")]
    NoFrames,
    #[error("malformed call frame information: {0}")]
    Cfi(#[from] gimli::Error),
    #[error("more than the {MAX_OBJECT_ROWS} rows one object may have")]
    TooLarge,
    #[error("a {0}-byte frame section, more than the {MAX_SECTION_BYTES} read of one object")]
    SectionTooLarge(u64),
    #[error("compiling took longer than {COMPILE_BUDGET:?}")]
    TooSlow,
}

/// An object's rows, sorted by address, each holding until the next.
#[derive(Debug, Default)]
pub struct Compiled {
    pub rows: Vec<UnwindRow>,
    /// Where the object's executable file bytes land in its addresses.
    pub segments: Vec<Segment>,
    /// Rows whose rule the walker cannot evaluate (it falls back to frame pointers there).
    pub unsupported: usize,
    /// Frame descriptions skipped as malformed; a malformed entry list ends the reading there,
    /// keeping what came before.
    pub malformed: usize,
}

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;
type Header = FileHeader64<Endianness>;

/// Compiles the call frame information of the ELF object `data` (bytes, or a file read as
/// needed: a file another user can truncate must not be mapped, or reading it could fault).
/// Reads the header, the program and section headers and the frame section only, each bounded.
pub fn compile<'a, R: ReadRef<'a>>(data: R) -> Result<Compiled, CompileError> {
    let header = Header::parse(data)?;
    let endian = header.endian()?;
    if header.e_machine(endian) != EM_X86_64 {
        return Err(CompileError::Architecture);
    }
    let count = header.shnum(endian, data)?;
    if count > MAX_SECTIONS {
        return Err(CompileError::TooManySections(count));
    }
    let sections = header.sections(endian, data)?;
    let find = |name: &[u8]| sections.section_by_name(endian, name).map(|(_, s)| s);
    let gimli_endian = match endian {
        Endianness::Little => RunTimeEndian::Little,
        Endianness::Big => RunTimeEndian::Big,
    };
    let mut bases = BaseAddresses::default();
    if let Some(text) = find(b".text") {
        bases = bases.set_text(text.sh_addr(endian));
    }
    if let Some(got) = find(b".got") {
        bases = bases.set_got(got.sh_addr(endian));
    }
    let frames = [b".eh_frame".as_slice(), b".debug_frame"].map(find);
    if let Some(size) = frames
        .iter()
        .flatten()
        .map(|s| s.sh_size(endian))
        .find(|&n| n > MAX_SECTION_BYTES)
    {
        return Err(CompileError::SectionTooLarge(size));
    }
    let mut budget = Budget::new();
    let mut compiled = match frames {
        [Some(section), _] => {
            let bases = bases.set_eh_frame(section.sh_addr(endian));
            let bytes = section.data(endian, data)?;
            let mut eh_frame = EhFrame::new(bytes, gimli_endian);
            eh_frame.set_address_size(8);
            rows_of(&eh_frame, &bases, &mut budget)?
        }
        [None, Some(section)] => {
            let bytes = section.data(endian, data)?;
            let mut debug_frame = DebugFrame::new(bytes, gimli_endian);
            debug_frame.set_address_size(8);
            rows_of(&debug_frame, &bases, &mut budget)?
        }
        [None, None] => return Err(CompileError::NoFrames),
    };
    compiled.segments = header
        .program_headers(endian, data)?
        .iter()
        .filter(|p| p.p_type(endian) == PT_LOAD && p.p_flags(endian) & PF_X != 0)
        .map(|p| Segment {
            file_offset: p.p_offset(endian),
            file_size: p.p_filesz(endian),
            address: p.p_vaddr(endian),
        })
        .filter(|segment| segment.file_size > 0)
        .collect();
    Ok(compiled)
}

/// What one object's compilation may still spend.
struct Budget {
    rows: usize,
    until: Instant,
}

impl Budget {
    fn new() -> Self {
        Self {
            rows: MAX_OBJECT_ROWS,
            until: Instant::now() + COMPILE_BUDGET,
        }
    }

    fn take_row(&mut self) -> Result<(), CompileError> {
        self.rows = self.rows.checked_sub(1).ok_or(CompileError::TooLarge)?;
        Ok(())
    }

    fn check_time(&self) -> Result<(), CompileError> {
        if Instant::now() > self.until {
            return Err(CompileError::TooSlow);
        }
        Ok(())
    }
}

/// Every frame description's rows, then a row of no information where each one ends (unless
/// the next begins there), sorted and with runs of equal rules merged.
fn rows_of<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    budget: &mut Budget,
) -> Result<Compiled, CompileError>
where
    S: UnwindSection<Slice<'a>>,
{
    let mut compiled = Compiled::default();
    let mut context = Box::new(UnwindContext::new());
    let mut entries = section.entries(bases);
    loop {
        budget.check_time()?;
        let entry = match entries.next() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(_) => {
                compiled.malformed += 1;
                break;
            }
        };
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(S::cie_from_offset) else {
            compiled.malformed += 1;
            continue;
        };
        if fde.len() == 0 {
            continue;
        }
        let before = compiled.rows.len();
        match add_fde_rows(
            section,
            bases,
            &mut context,
            &fde,
            &mut compiled.rows,
            budget,
        ) {
            Ok(()) => {}
            Err(CompileError::Cfi(_)) => {
                compiled.rows.truncate(before);
                compiled.malformed += 1;
                continue;
            }
            Err(err) => return Err(err),
        }
        budget.take_row()?;
        compiled.rows.push(row(fde.end_address(), CfaRule::None, 0));
    }
    compiled.rows = normalize(std::mem::take(&mut compiled.rows));
    compiled.unsupported = compiled
        .rows
        .iter()
        .filter(|r| r.cfa == CfaRule::Unsupported as u8 || r.rbp == RbpRule::Unsupported as u8)
        .count();
    Ok(compiled)
}

fn add_fde_rows<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    context: &mut UnwindContext<usize>,
    fde: &gimli::FrameDescriptionEntry<Slice<'a>>,
    rows: &mut Vec<UnwindRow>,
    budget: &mut Budget,
) -> Result<(), CompileError>
where
    S: UnwindSection<Slice<'a>>,
{
    let mut table = fde.rows(section, bases, context)?;
    while let Some(gimli_row) = table.next_row()? {
        budget.take_row()?;
        rows.push(convert(section, gimli_row));
    }
    Ok(())
}

/// Sorted by address; where a description's end meets the next one's start, the start wins;
/// a row repeating the rules of the one before is dropped.
fn normalize(mut rows: Vec<UnwindRow>) -> Vec<UnwindRow> {
    rows.sort_by_key(|r| (r.pc, r.cfa != CfaRule::None as u8));
    let mut out: Vec<UnwindRow> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.last_mut() {
            Some(last) if last.pc == r.pc => *last = r,
            Some(last) if same_rules(last, &r) => {}
            _ => out.push(r),
        }
    }
    out
}

/// Whether the row's rules are ones the kernel's walker knows.
pub fn rule_known(row: &UnwindRow) -> bool {
    row.cfa <= CfaRule::Unsupported as u8 && row.rbp <= RbpRule::Unsupported as u8
}

fn same_rules(a: &UnwindRow, b: &UnwindRow) -> bool {
    (a.cfa, a.cfa_offset, a.rbp, a.rbp_offset) == (b.cfa, b.cfa_offset, b.rbp, b.rbp_offset)
}

fn row(pc: u64, cfa: CfaRule, cfa_offset: i32) -> UnwindRow {
    UnwindRow {
        pc,
        cfa_offset,
        rbp_offset: 0,
        cfa: cfa as u8,
        rbp: RbpRule::Same as u8,
    }
}

/// One of gimli's rows as the walker can evaluate it.
fn convert<'a, S: UnwindSection<Slice<'a>>>(
    section: &S,
    gimli_row: &UnwindTableRow<usize>,
) -> UnwindRow {
    let pc = gimli_row.start_address();
    let (cfa, cfa_offset) = cfa_of(section, gimli_row);
    let mut out = row(pc, cfa, cfa_offset);
    match gimli_row.register(X86_64::RA) {
        Some(RegisterRule::Undefined) => return row(pc, CfaRule::End, 0),
        None | Some(RegisterRule::Offset(-8)) => {}
        Some(_) => return row(pc, CfaRule::Unsupported, 0),
    }
    match gimli_row.register(X86_64::RBP) {
        None | Some(RegisterRule::SameValue) => {}
        Some(RegisterRule::Offset(offset)) => match i16::try_from(offset) {
            Ok(offset) => {
                out.rbp = RbpRule::AtCfa as u8;
                out.rbp_offset = offset;
            }
            Err(_) => out.rbp = RbpRule::Unsupported as u8,
        },
        Some(_) => out.rbp = RbpRule::Unsupported as u8,
    }
    out
}

fn cfa_of<'a, S: UnwindSection<Slice<'a>>>(
    section: &S,
    gimli_row: &UnwindTableRow<usize>,
) -> (CfaRule, i32) {
    let (rule, offset) = match gimli_row.cfa() {
        GimliCfa::RegisterAndOffset { register, offset } if *register == X86_64::RSP => {
            (CfaRule::Rsp, *offset)
        }
        GimliCfa::RegisterAndOffset { register, offset } if *register == X86_64::RBP => {
            (CfaRule::Rbp, *offset)
        }
        GimliCfa::RegisterAndOffset { .. } => return (CfaRule::Unsupported, 0),
        GimliCfa::Expression(expression) => {
            let bytes = expression.get(section).map(|e| e.0.slice());
            return match bytes.ok().and_then(plt_threshold) {
                Some(threshold) => (CfaRule::Plt, threshold),
                None => (CfaRule::Unsupported, 0),
            };
        }
    };
    match i32::try_from(offset) {
        Ok(offset) => (rule, offset),
        Err(_) => (CfaRule::Unsupported, 0),
    }
}

/// The one expression every x86_64 PLT uses, `rsp + 8 + ((rip & 15) >= N) << 3`: its `N`.
fn plt_threshold(bytes: &[u8]) -> Option<i32> {
    // DW_OP_breg7 8, DW_OP_breg16 0, DW_OP_lit15, DW_OP_and, DW_OP_lit<N>, DW_OP_ge,
    // DW_OP_lit3, DW_OP_shl, DW_OP_plus.
    match bytes {
        [
            0x77,
            0x08,
            0x80,
            0x00,
            0x3f,
            0x1a,
            lit @ 0x30..=0x4f,
            0x2a,
            0x33,
            0x24,
            0x22,
        ] => Some(i32::from(lit - 0x30)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
