//! The async runtime of a LeadRelay process (`leadrelay-api`, `leadrelay-worker`).

use std::{num::NonZeroUsize, thread};

/// The runtime settings of both processes.
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeSettings {
    /// Runtime threads of this process (default: half the machine's cores, at least one).
    #[arg(long, env = "LEADRELAY_THREADS", value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub threads: Option<u16>,
}

/// Runtime threads when `LEADRELAY_THREADS` is not set: half the machine's cores, at
/// least one. The api, the worker, PostgreSQL and Redis often share a machine; a runtime
/// thread per core in each process left them waking each other across more threads than
/// cores (a third of a 2-core machine's time went to the kernel's scheduler), and one
/// thread each carried a third more leads, at a third of the latency.
pub fn default_threads() -> usize {
    (thread::available_parallelism().map_or(1, NonZeroUsize::get) / 2).max(1)
}

/// A multi-threaded tokio runtime with the settings' threads (at least one, as the
/// settings check), or [`default_threads`] when they name none.
pub fn build(settings: &RuntimeSettings) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = settings.threads.map_or_else(default_threads, usize::from);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_threads_it_was_given() {
        for (asked, has) in [(Some(3), 3), (Some(1), 1), (None, default_threads())] {
            let runtime = build(&RuntimeSettings { threads: asked }).unwrap();
            assert_eq!(runtime.metrics().num_workers(), has, "asked for {asked:?}");
        }
    }
}
