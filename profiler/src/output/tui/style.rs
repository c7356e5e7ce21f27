//! The screen's styles, with and without color: under NO_COLOR every highlight falls back to
//! bold or reverse video so nothing is told by color alone.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub verdict: Style,
    pub header: Style,
    pub sorted_header: Style,
    pub suspect: Style,
    pub selected: Style,
    pub hint: Style,
}

impl Palette {
    pub fn new(color: bool) -> Self {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        if color {
            Self {
                verdict: bold.fg(Color::Yellow),
                header: bold.fg(Color::Black).bg(Color::Cyan),
                sorted_header: bold.fg(Color::Black).bg(Color::White),
                suspect: bold.fg(Color::Red),
                selected: Style::new().add_modifier(Modifier::REVERSED),
                hint: Style::new().fg(Color::DarkGray),
            }
        } else {
            Self {
                verdict: bold,
                header: Style::new().add_modifier(Modifier::REVERSED),
                sorted_header: bold.add_modifier(Modifier::REVERSED | Modifier::UNDERLINED),
                suspect: bold,
                selected: Style::new().add_modifier(Modifier::REVERSED),
                hint: Style::new(),
            }
        }
    }
}
