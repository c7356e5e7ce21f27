//! Compiles an object's call frame information (`.eh_frame`, else `.debug_frame`) into the rows
//! the kernel's stack walker reads: for each address, where the caller's frame and `rbp` are.

use gimli::{
    BaseAddresses, CfaRule as GimliCfa, CieOrFde, DebugFrame, EhFrame, EndianSlice, RegisterRule,
    RunTimeEndian, UnwindContext, UnwindSection, UnwindTableRow, X86_64,
};
use object::{Object as _, ObjectSection as _, ObjectSegment as _};
use profiler_common::{CfaRule, RbpRule, UnwindRow};

use super::store::Segment;

/// Rows of one object at most: a table larger than this is refused rather than crowding out
/// every other object's (the largest Debian libraries have a few hundred thousand).
pub const MAX_OBJECT_ROWS: usize = 4 << 20;

/// Bytes of a frame section read at most: the objects are anybody's files, and a sparse one
/// can claim any size.
pub const MAX_SECTION_BYTES: u64 = 64 << 20;

/// Why an object has no table.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("not a readable ELF object: {0}")]
    Elf(#[from] object::Error),
    #[error("not an x86_64 object")]
    Architecture,
    #[error("no .eh_frame or .debug_frame section")]
    NoFrames,
    #[error("malformed call frame information: {0}")]
    Cfi(#[from] gimli::Error),
    #[error("{0} rows, more than the {MAX_OBJECT_ROWS} one object may have")]
    TooLarge(usize),
    #[error("a {0}-byte frame section, more than the {MAX_SECTION_BYTES} read of one object")]
    SectionTooLarge(u64),
}

/// An object's rows, sorted by address, each holding until the next.
#[derive(Debug, Default)]
pub struct Compiled {
    pub rows: Vec<UnwindRow>,
    /// Rows whose rule the walker cannot evaluate (it falls back to frame pointers there).
    pub unsupported: usize,
    /// Frame descriptions skipped as malformed.
    pub malformed: usize,
}

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;

/// Compiles the call frame information of the ELF object `data` (bytes, or a file read as
/// needed: a file another user can truncate must not be mapped, or reading it could fault).
pub fn compile<'a, R: object::ReadRef<'a>>(data: R) -> Result<Compiled, CompileError> {
    let file = object::File::parse(data)?;
    if file.architecture() != object::Architecture::X86_64 {
        return Err(CompileError::Architecture);
    }
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let address = |name: &str| file.section_by_name(name).map(|s| s.address());
    let mut bases = BaseAddresses::default();
    if let Some(text) = address(".text") {
        bases = bases.set_text(text);
    }
    if let Some(got) = address(".got") {
        bases = bases.set_got(got);
    }
    let frames = [".eh_frame", ".debug_frame"].map(|name| file.section_by_name(name));
    if let Some(size) = frames
        .iter()
        .flatten()
        .map(|s| s.size())
        .find(|&n| n > MAX_SECTION_BYTES)
    {
        return Err(CompileError::SectionTooLarge(size));
    }
    let compiled = if let Some(section) = file.section_by_name(".eh_frame") {
        let bases = bases.set_eh_frame(section.address());
        let mut eh_frame = EhFrame::new(section.data()?, endian);
        eh_frame.set_address_size(8);
        rows_of(&eh_frame, &bases)?
    } else if let Some(section) = file.section_by_name(".debug_frame") {
        let mut debug_frame = DebugFrame::new(section.data()?, endian);
        debug_frame.set_address_size(8);
        rows_of(&debug_frame, &bases)?
    } else {
        return Err(CompileError::NoFrames);
    };
    if compiled.rows.len() > MAX_OBJECT_ROWS {
        return Err(CompileError::TooLarge(compiled.rows.len()));
    }
    Ok(compiled)
}

/// The object's loadable segments: where its file bytes land in its addresses.
pub fn segments<'a, R: object::ReadRef<'a>>(data: R) -> Result<Vec<Segment>, CompileError> {
    let file = object::File::parse(data)?;
    Ok(file
        .segments()
        .map(|segment| {
            let (file_offset, file_size) = segment.file_range();
            Segment {
                file_offset,
                file_size,
                address: segment.address(),
            }
        })
        .filter(|segment| segment.file_size > 0)
        .collect())
}

/// Every frame description's rows, then a row of no information where each one ends (unless
/// the next begins there), sorted and with runs of equal rules merged.
fn rows_of<'a, S>(section: &S, bases: &BaseAddresses) -> Result<Compiled, gimli::Error>
where
    S: UnwindSection<Slice<'a>>,
{
    let mut compiled = Compiled::default();
    let mut context = Box::new(UnwindContext::new());
    let mut entries = section.entries(bases);
    while let Some(entry) = entries.next()? {
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
        if add_fde_rows(section, bases, &mut context, &fde, &mut compiled).is_err() {
            compiled.rows.truncate(before);
            compiled.malformed += 1;
            continue;
        }
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
    compiled: &mut Compiled,
) -> Result<(), gimli::Error>
where
    S: UnwindSection<Slice<'a>>,
{
    let mut table = fde.rows(section, bases, context)?;
    while let Some(gimli_row) = table.next_row()? {
        compiled.rows.push(convert(section, gimli_row));
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
