//! What the viewer chose (sort, grouping, filter, pause, selection, overlays) and how each key
//! changes it; the command acts on the returned [`Action`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::rows::{Column, Grouping};

#[derive(Debug, Clone, PartialEq)]
pub struct UiState {
    pub sort: Column,
    pub descending: bool,
    pub grouping: Grouping,
    pub filter: String,
    /// Keys go to the filter text until Enter or Esc.
    pub editing_filter: bool,
    pub paused: bool,
    pub help: bool,
    /// Index into the displayed (sorted, filtered) rows.
    pub selected: usize,
    /// The process whose detail (stacks, blame) is open.
    pub detail: Option<u32>,
    /// False when NO_COLOR asks for none: highlights then use only bold and reverse video.
    pub color: bool,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            sort: Column::Cpu,
            descending: true,
            grouping: Grouping::Process,
            filter: String::new(),
            editing_filter: false,
            paused: false,
            help: false,
            selected: 0,
            detail: None,
            color: true,
        }
    }
}

/// What the command must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Redraw: the state changed.
    Redraw,
    Quit,
    /// Open the detail of the selected row: the command resolves the row to its pid.
    OpenDetail,
}

/// NO_COLOR (https://no-color.org): set and non-empty means no colors.
pub fn color_allowed(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|value| value.is_empty())
}

impl UiState {
    fn sort_by(&mut self, column: Column) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = column.descending_by_default();
        }
        self.selected = 0;
    }

    /// Applies `key`; `rows` is how many rows are displayed, to keep the selection on one.
    pub fn handle_key(&mut self, key: KeyEvent, rows: usize) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c' | 'd'))
        {
            return Action::Quit;
        }
        if self.editing_filter {
            self.filter_key(key.code)
        } else if self.help {
            // Any key closes the overlay, so it can never trap the viewer.
            self.help = false;
            if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::Redraw
            }
        } else if self.detail.is_some() {
            self.detail_key(key.code)
        } else {
            self.table_key(key.code, rows)
        }
    }

    /// A key while the filter is being typed.
    fn filter_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => return Action::None,
        }
        self.selected = 0;
        Action::Redraw
    }

    /// A key while a process's detail is open.
    fn detail_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Enter => {
                self.detail = None;
                Action::Redraw
            }
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Char('p' | ' ') => {
                self.paused = !self.paused;
                Action::Redraw
            }
            _ => Action::None,
        }
    }

    /// A key on the table: sort, filter, group, pause, move, open.
    fn table_key(&mut self, code: KeyCode, rows: usize) -> Action {
        match code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('c') => self.sort_by(Column::Cpu),
            KeyCode::Char('w') => self.sort_by(Column::Wait),
            KeyCode::Char('s') => self.sort_by(Column::Syscalls),
            // One key for both directions: the second press moves to writes, or receives.
            KeyCode::Char('i') => self.sort_toggling(Column::Read, Column::Write),
            KeyCode::Char('n') => self.sort_toggling(Column::Tx, Column::Rx),
            KeyCode::Char('m') => self.sort_by(Column::Rss),
            KeyCode::Char('r') => self.descending = !self.descending,
            KeyCode::Left => self.sort_by(self.sort.left()),
            KeyCode::Right => self.sort_by(self.sort.right()),
            KeyCode::Char('/') => {
                self.editing_filter = true;
                self.filter.clear();
            }
            KeyCode::Esc if !self.filter.is_empty() => self.filter.clear(),
            KeyCode::Char('g') => {
                self.grouping = self.grouping.next();
                self.selected = 0;
            }
            KeyCode::Char('p' | ' ') => self.paused = !self.paused,
            KeyCode::Char('?' | 'h') => self.help = true,
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(rows.saturating_sub(1));
            }
            KeyCode::Home => self.selected = 0,
            KeyCode::End => self.selected = rows.saturating_sub(1),
            KeyCode::Enter if rows > 0 => return Action::OpenDetail,
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// Sorts by `first`, or by `second` when already sorted by `first`.
    fn sort_toggling(&mut self, first: Column, second: Column) {
        self.sort_by(if self.sort == first { second } else { first });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn sort_keys_pick_a_column_and_a_second_press_reverses() {
        let mut state = UiState::default();
        state.handle_key(key(KeyCode::Char('m')), 5);
        assert_eq!((state.sort, state.descending), (Column::Rss, true));
        state.handle_key(key(KeyCode::Char('m')), 5);
        assert!(!state.descending);
        state.handle_key(key(KeyCode::Left), 5);
        assert_eq!(state.sort, Column::Rx);
        state.sort = Column::Name;
        state.handle_key(key(KeyCode::Left), 5);
        assert_eq!((state.sort, state.descending), (Column::Pid, false));
    }

    #[test]
    fn filter_takes_keys_until_enter_and_esc_clears_it() {
        let mut state = UiState::default();
        state.handle_key(key(KeyCode::Char('/')), 5);
        for c in "qm".chars() {
            state.handle_key(key(KeyCode::Char(c)), 5);
        }
        assert_eq!(state.filter, "qm");
        assert_eq!(state.sort, Column::Cpu, "typed keys are not commands");
        state.handle_key(key(KeyCode::Enter), 5);
        assert!(!state.editing_filter);
        assert_eq!(state.filter, "qm");
        state.handle_key(key(KeyCode::Esc), 5);
        assert!(state.filter.is_empty());
    }

    #[test]
    fn quit_help_detail_and_selection() {
        let mut state = UiState::default();
        assert_eq!(state.handle_key(key(KeyCode::Down), 2), Action::Redraw);
        state.handle_key(key(KeyCode::Down), 2);
        assert_eq!(state.selected, 1, "selection stays on the last row");
        assert_eq!(state.handle_key(key(KeyCode::Enter), 2), Action::OpenDetail);
        state.detail = Some(7);
        state.handle_key(key(KeyCode::Esc), 2);
        assert_eq!(state.detail, None);
        state.handle_key(key(KeyCode::Char('?')), 2);
        assert!(state.help);
        state.handle_key(key(KeyCode::Char('x')), 2);
        assert!(!state.help);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(state.handle_key(ctrl_c, 2), Action::Quit);
        assert_eq!(state.handle_key(key(KeyCode::Char('q')), 2), Action::Quit);
    }

    #[test]
    fn no_color_counts_only_when_set_and_non_empty() {
        assert!(color_allowed(None));
        assert!(color_allowed(Some("".as_ref())));
        assert!(!color_allowed(Some("1".as_ref())));
    }
}
