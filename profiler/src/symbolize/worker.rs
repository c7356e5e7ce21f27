//! The symbolizer on a thread of its own, started before the probes load: kallsyms (and, for
//! `diagnose`, the ELF files of the processes seen running) are parsed while the probes load
//! and sample, so symbolization finds them parsed (blazesym's symbolizer cannot move between
//! threads).

use std::{
    collections::HashMap,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use blazesym::{
    MaybeDefault,
    symbolize::{
        Input, Symbolizer,
        source::{Kernel, Source},
    },
};
use tokio::sync::oneshot;

use super::{Folded, user::UserSymbolizer};
use crate::model::{Mapping, ProcessUsage};

/// Any kernel text address: looking it up makes blazesym read and index kallsyms.
const SOME_KERNEL_ADDR: u64 = 0xffff_ffff_8100_0000;

/// Kallsyms changes as modules and BPF programs load: a long-lived worker reads it again after
/// this long. Reading it costs ~40 ms of kernel time plus its parsing: once a window, that was
/// a quarter of `record`'s own CPU time.
const KERNEL_REFRESH: Duration = Duration::from_secs(600);

type Reply = (Vec<ProcessUsage>, Folded);

/// What the worker keeps parsed besides the kernel's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// Every user file it was asked to warm or symbolize, for the session's life: for a
    /// short session whose one window is named at once (`diagnose`).
    Kept,
    /// None: each symbolization parses its files one at a time and drops them
    /// ([`UserSymbolizer::one_file_at_a_time`]), so memory stays bounded however long the
    /// session runs (`record`).
    OneAtATime,
}

enum Request {
    Warm(Vec<Mapping>),
    Symbolize {
        processes: Vec<ProcessUsage>,
        stacks: HashMap<i32, Vec<u64>>,
        reply: oneshot::Sender<Reply>,
    },
}

/// Handle to the symbolizer thread; the thread ends when every handle is dropped.
#[derive(Clone)]
pub struct Worker {
    requests: mpsc::Sender<Request>,
    files: Files,
}

impl Worker {
    /// Starts the thread, which runs `on_start` (the caller's thread settings) and reads
    /// kallsyms at once.
    pub fn start(files: Files, on_start: fn()) -> anyhow::Result<Self> {
        let (requests, inbox) = mpsc::channel();
        thread::Builder::new()
            .name("symbolizer".to_owned())
            .spawn(move || {
                on_start();
                serve(&inbox, files);
            })
            .context("starting the symbolizer thread")?;
        Ok(Self { requests, files })
    }

    /// Whether files are kept parsed, so warming them ahead is worth it.
    pub fn keeps_files(&self) -> bool {
        self.files == Files::Kept
    }

    /// Has the files of `maps` parsed ahead of [`Worker::symbolize`]; each file once.
    pub fn warm(&self, maps: Vec<Mapping>) {
        if self.keeps_files() && !maps.is_empty() {
            // A gone thread is reported by `symbolize`.
            let _ = self.requests.send(Request::Warm(maps));
        }
    }

    /// [`super::symbolize`] on the worker, after the files asked for so far are parsed;
    /// hands the processes back with their stacks by name.
    pub async fn symbolize(
        &self,
        processes: Vec<ProcessUsage>,
        stacks: HashMap<i32, Vec<u64>>,
    ) -> anyhow::Result<Reply> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Symbolize {
                processes,
                stacks,
                reply,
            })
            .ok()
            .context("the symbolizer thread is gone")?;
        answer.await.context("the symbolizer thread failed")
    }
}

fn serve(inbox: &mpsc::Receiver<Request>, files: Files) {
    match files {
        Files::Kept => serve_kept(inbox),
        Files::OneAtATime => serve_lean(inbox),
    }
}

/// One symbolizer for everything, files kept parsed once warmed or used.
fn serve_kept(inbox: &mpsc::Receiver<Request>) {
    let kernel = KernelRead::now();
    let mut user = UserSymbolizer::new(&kernel.symbolizer);
    for request in inbox {
        match request {
            Request::Warm(maps) => maps.iter().for_each(|map| user.warm(map)),
            Request::Symbolize {
                processes,
                stacks,
                reply,
            } => {
                let folded =
                    super::symbolize_with(&kernel.symbolizer, &mut user, &processes, &stacks);
                let _ = reply.send((processes, folded));
            }
        }
    }
}

/// The kernel's symbols kept (read again when old), user files parsed per request.
fn serve_lean(inbox: &mpsc::Receiver<Request>) {
    let mut kernel = KernelRead::now();
    for request in inbox {
        let Request::Symbolize {
            processes,
            stacks,
            reply,
        } = request
        else {
            continue;
        };
        if kernel.at.elapsed() >= KERNEL_REFRESH {
            // The old one goes first: never two copies of kallsyms at once.
            drop(kernel);
            kernel = KernelRead::now();
        }
        let mut user = UserSymbolizer::one_file_at_a_time(&kernel.symbolizer);
        let folded = super::symbolize_with(&kernel.symbolizer, &mut user, &processes, &stacks);
        let _ = reply.send((processes, folded));
    }
}

/// A symbolizer that has read kallsyms, and when.
struct KernelRead {
    symbolizer: Symbolizer,
    at: Instant,
}

impl KernelRead {
    fn now() -> Self {
        let symbolizer = super::new_symbolizer();
        let kernel = Source::Kernel(Kernel {
            kallsyms: MaybeDefault::Default,
            vmlinux: MaybeDefault::None,
            debug_syms: false,
            ..Kernel::default()
        });
        if let Err(err) = symbolizer.symbolize(&kernel, Input::AbsAddr(&[SOME_KERNEL_ADDR])) {
            log::debug!("reading kallsyms ahead: {err}");
        }
        Self {
            symbolizer,
            at: Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessIdentity, read_identity};

    #[inline(never)]
    fn warmed_symbol_for_test() -> u64 {
        std::hint::black_box(13)
    }

    #[tokio::test]
    async fn names_frames_after_warming_the_files_they_lie_in() {
        let me = read_identity(std::process::id()).unwrap();
        let worker = Worker::start(Files::Kept, || {}).unwrap();
        worker.warm(me.maps.clone());
        let ip = warmed_symbol_for_test as *const () as u64;
        let process = ProcessUsage {
            samples: 2,
            stacks: vec![((5, -1), 2)],
            ..ProcessUsage::new(ProcessIdentity { exited: true, ..me })
        };
        let (processes, folded) = worker
            .symbolize(vec![process], HashMap::from([(5, vec![ip])]))
            .await
            .unwrap();
        assert_eq!(processes[0].samples, 2);
        let (frames, count) = &folded.cpu[0][0];
        assert_eq!(*count, 2);
        assert!(
            frames.iter().any(|f| f.contains("warmed_symbol_for_test")),
            "{frames:?}"
        );
    }
}
