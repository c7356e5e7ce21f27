//! The symbolizer on a thread of its own, started before the probes load: kallsyms and the ELF
//! files of the processes seen running are parsed while the probes load and sample, so the final
//! symbolization finds them parsed (blazesym's symbolizer cannot move between threads).

use std::{collections::HashMap, sync::mpsc, thread};

use anyhow::Context as _;
use blazesym::{
    MaybeDefault,
    symbolize::{
        Input,
        source::{Kernel, Source},
    },
};
use tokio::sync::oneshot;

use super::{Folded, user::UserSymbolizer};
use crate::model::{Mapping, ProcessUsage};

/// Any kernel text address: looking it up makes blazesym read and index kallsyms.
const SOME_KERNEL_ADDR: u64 = 0xffff_ffff_8100_0000;

type Reply = (Vec<ProcessUsage>, Folded);

enum Request {
    Warm(Vec<Mapping>),
    Symbolize {
        processes: Vec<ProcessUsage>,
        stacks: HashMap<i32, Vec<u64>>,
        reply: oneshot::Sender<Reply>,
    },
}

/// Handle to the symbolizer thread; the thread ends when the handle is dropped.
pub struct Worker {
    requests: mpsc::Sender<Request>,
}

impl Worker {
    /// Starts the thread, which reads kallsyms at once.
    pub fn start() -> anyhow::Result<Self> {
        let (requests, inbox) = mpsc::channel();
        thread::Builder::new()
            .name("symbolizer".to_owned())
            .spawn(move || serve(&inbox))
            .context("starting the symbolizer thread")?;
        Ok(Self { requests })
    }

    /// Has the files of `maps` parsed ahead of [`Worker::symbolize`]; each file once.
    pub fn warm(&self, maps: Vec<Mapping>) {
        if !maps.is_empty() {
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

fn serve(inbox: &mpsc::Receiver<Request>) {
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
    let mut user = UserSymbolizer::new(&symbolizer);
    for request in inbox {
        match request {
            Request::Warm(maps) => maps.iter().for_each(|map| user.warm(map)),
            Request::Symbolize {
                processes,
                stacks,
                reply,
            } => {
                let folded = super::symbolize_with(&symbolizer, &mut user, &processes, &stacks);
                let _ = reply.send((processes, folded));
            }
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
        let worker = Worker::start().unwrap();
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
