//! The process / application table: which columns fit the terminal's width, their cells, the
//! sort marker and the suspect highlight.

use ratatui::{
    layout::Constraint,
    text::Text,
    widgets::{Cell, Row as TableRow, Table},
};

use super::{
    format,
    rows::{Column, Row},
    state::UiState,
    style::Palette,
};

/// Columns in the order they are given up when the terminal is too narrow for all of them:
/// the first ones are what a top is for.
const KEEP_ORDER: [Column; 10] = [
    Column::Name,
    Column::Cpu,
    Column::Pid,
    Column::Wait,
    Column::Syscalls,
    Column::Rss,
    Column::Read,
    Column::Write,
    Column::Tx,
    Column::Rx,
];

/// Width of the suspect marker column.
const MARKER: u16 = 1;
const NAME_MIN: u16 = 12;
const NAME_MAX: u16 = 28;

fn width(column: Column) -> u16 {
    match column {
        Column::Pid => 7,
        Column::Name => NAME_MIN,
        Column::Cpu => 6,
        Column::Wait => 11,
        Column::Syscalls | Column::Read | Column::Write | Column::Tx | Column::Rx => 9,
        Column::Rss => 7,
    }
}

/// The columns shown in `total` cells of width, in display order.
pub fn visible_columns(total: u16) -> Vec<Column> {
    let mut kept: Vec<Column> = Vec::new();
    let mut used = MARKER;
    for column in KEEP_ORDER {
        // One cell of spacing before every column.
        let needed = width(column) + 1;
        if used + needed > total && !kept.is_empty() {
            break;
        }
        used += needed;
        kept.push(column);
    }
    Column::ALL
        .into_iter()
        .filter(|c| kept.contains(c))
        .collect()
}

fn cell_text(row: &Row, column: Column, grouped: bool) -> String {
    match column {
        Column::Pid if grouped => row.processes.to_string(),
        Column::Pid => row.pid.to_string(),
        Column::Name => row.name.clone(),
        Column::Cpu => format::cores(row.cores),
        Column::Wait => format::optional(row.wait_ms_per_s, format::wait),
        Column::Syscalls => format::optional(row.syscalls_per_s, format::rate),
        Column::Read => format::optional(row.read_per_s, format::bytes),
        Column::Write => format::optional(row.write_per_s, format::bytes),
        Column::Tx => format::optional(row.tx_per_s, format::bytes),
        Column::Rx => format::optional(row.rx_per_s, format::bytes),
        Column::Rss => format::optional(row.rss_bytes, format::bytes),
    }
}

/// Figures align right, names left.
fn aligned(text: String, column: Column) -> Cell<'static> {
    if column == Column::Name {
        Cell::from(text)
    } else {
        Cell::from(Text::from(text).right_aligned())
    }
}

/// The table of `rows` (already sorted and filtered) for a terminal `total` cells wide.
pub fn widget(rows: &[Row], state: &UiState, total: u16) -> Table<'static> {
    let palette = Palette::new(state.color);
    let grouped = state.grouping != super::rows::Grouping::Process;
    let columns = visible_columns(total);
    let mut header = vec![Cell::from(" ")];
    header.extend(columns.iter().map(|&column| {
        let mut title = column.header(state.grouping).to_owned();
        let style = if column == state.sort {
            title.push(if state.descending { '▼' } else { '▲' });
            palette.sorted_header
        } else {
            palette.header
        };
        aligned(title, column).style(style)
    }));
    let body = rows.iter().map(|row| {
        let mut cells = vec![Cell::from(if row.suspect { "!" } else { " " })];
        cells.extend(
            columns
                .iter()
                .map(|&column| aligned(cell_text(row, column, grouped), column)),
        );
        let line = TableRow::new(cells);
        if row.suspect {
            line.style(palette.suspect)
        } else {
            line
        }
    });
    // Names take what the figures leave, up to a width past which they only push figures apart.
    let others: u16 = columns
        .iter()
        .filter(|&&c| c != Column::Name)
        .map(|&c| width(c) + 1)
        .sum();
    let name_width = total
        .saturating_sub(MARKER + others + 1)
        .clamp(NAME_MIN, NAME_MAX);
    let widths = std::iter::once(Constraint::Length(MARKER)).chain(columns.iter().map(|&c| {
        Constraint::Length(if c == Column::Name {
            name_width
        } else {
            width(c)
        })
    }));
    Table::new(body, widths)
        .header(TableRow::new(header).style(palette.header))
        .row_highlight_style(palette.selected)
        .column_spacing(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_keep_the_most_useful_columns() {
        assert_eq!(visible_columns(200), Column::ALL.to_vec());
        assert_eq!(
            visible_columns(40),
            [Column::Pid, Column::Name, Column::Cpu]
        );
        assert_eq!(visible_columns(5), [Column::Name]);
    }
}
