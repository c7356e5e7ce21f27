//! The terminal while `top` runs full-screen: raw mode and the alternate screen, left on every
//! way out (return, error, panic), and a thread turning terminal input into events.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use crossterm::event::{self, Event};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

/// Restores the terminal when dropped. `ratatui::try_init` also installs a panic hook that
/// restores it before the panic message prints, so a panic never leaves a raw terminal.
pub struct Screen {
    pub terminal: DefaultTerminal,
}

impl Screen {
    pub fn enter() -> std::io::Result<Self> {
        Ok(Self {
            terminal: ratatui::try_init()?,
        })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Terminal events, read on their own thread (crossterm's reads block) until dropped.
pub struct Input {
    pub events: mpsc::UnboundedReceiver<Event>,
    stop: Arc<AtomicBool>,
}

/// How often the input thread checks whether it should stop.
const POLL: Duration = Duration::from_millis(100);

impl Input {
    pub fn start() -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match event::poll(POLL) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    // The terminal went away: closing the channel tells the command to stop.
                    Err(_) => return,
                }
                let Ok(event) = event::read() else { return };
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
        Self { events, stop }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
