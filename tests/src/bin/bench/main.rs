//! `bench`: LeadRelay's benchmark and chaos harness (issue 5). Starts the release api and
//! worker as processes on a fresh PostgreSQL database and Redis prefix, posts leads to
//! them, times every lead from the inbound POST to the first arrival at a local receiver,
//! and compares the end-to-end rate with the database floor measured in the same run.
//!
//! `cargo run --release -p leadrelay-tests --bin bench -- all` runs every scenario.

mod cpu;
mod floor;
mod load;
mod receiver;
mod report;
mod scenarios;
mod stack;
mod transactions;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::{path::PathBuf, process::ExitCode};

#[derive(Parser, Debug)]
#[command(name = "bench", about = "LeadRelay benchmark and chaos harness")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    options: Options,
}

/// How the noisy neighbour's receiver answers.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    /// Never: each delivery ends at A's timeout.
    Hang,
    /// At once, as B's does.
    Ok,
}

/// What to measure.
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// N leads as fast as possible, 1 list, 1 integration (default 20,000 leads).
    Throughput,
    /// A fixed rate for a duration (default 500 leads/s for 60 s).
    Latency,
    /// 1 lead to 10 integrations (default 2,000 leads, 20,000 deliveries).
    Fanout,
    /// Tenant B's p99 alone, then beside tenant A whose receiver hangs (default 200/s, 20 s).
    NoisyNeighbour,
    /// N due deliveries in the ledger with no worker, then workers start (default 100,000).
    Backlog,
    /// Throughput while killing workers, flushing Redis and killing database backends.
    Chaos,
    /// The database floor alone: the SQL a lead needs, no HTTP, no queue.
    Floor,
    /// The floor, then every scenario, in one report.
    All,
}

impl Scenario {
    /// The scenarios `all` runs, in order.
    pub const EVERY: [Scenario; 6] = [
        Scenario::Throughput,
        Scenario::Latency,
        Scenario::Fanout,
        Scenario::NoisyNeighbour,
        Scenario::Backlog,
        Scenario::Chaos,
    ];

    /// The subcommand's name, as reported.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Throughput => "throughput",
            Scenario::Latency => "latency",
            Scenario::Fanout => "fanout",
            Scenario::NoisyNeighbour => "noisy-neighbour",
            Scenario::Backlog => "backlog",
            Scenario::Chaos => "chaos",
            Scenario::Floor => "floor",
            Scenario::All => "all",
        }
    }
}

/// Sizes and settings; every one has a per-scenario default (see `--help`).
#[derive(Args, Debug, Clone)]
pub struct Options {
    /// Leads to post (throughput 20000, fanout 2000, backlog 100000, chaos 20000).
    #[arg(long, global = true)]
    pub leads: Option<u64>,
    /// Leads per second (latency 500, noisy-neighbour 200).
    #[arg(long, global = true)]
    pub rate: Option<u64>,
    /// Seconds of fixed-rate load (latency 60, noisy-neighbour 20).
    #[arg(long, global = true)]
    pub duration: Option<u64>,
    /// Fresh-stack runs per scenario; the report shows the median and the spread.
    #[arg(long, global = true, default_value_t = 3)]
    pub runs: usize,
    /// Write the results as JSON (an object, or an array for `all`).
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Write the Markdown table.
    #[arg(long, global = true)]
    pub markdown: Option<PathBuf>,
    /// PostgreSQL pool of the api, and of the floor (connections and concurrent tasks).
    #[arg(long, global = true, default_value_t = 16)]
    pub api_pool: u32,
    /// PostgreSQL pool of each worker.
    #[arg(long, global = true, default_value_t = 10)]
    pub worker_pool: u32,
    /// Worker processes (chaos runs at least 2).
    #[arg(long, global = true, default_value_t = 1)]
    pub workers: usize,
    /// `maxInFlight` of every integration. The product's default is 8; the bench raises
    /// it so the receiver, not the per-integration cap, is never the limit.
    #[arg(long, global = true, default_value_t = 32)]
    pub max_in_flight: u32,
    /// Concurrent connections of the as-fast-as-possible load generator.
    #[arg(long, global = true, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to wait for the last deliveries after the load ends (or the backlog starts).
    #[arg(long, global = true, default_value_t = 120)]
    pub drain_timeout: u64,
    /// Leads per floor run (the floor runs three times per invocation).
    #[arg(long, global = true, default_value_t = 5000)]
    pub floor_leads: u64,
    /// Leads posted to a tenant of their own, as fast as `--concurrency` allows, before a
    /// throughput, latency, fanout or noisy-neighbour run is measured, so the fresh stack's
    /// connections, prepared statements and caches are in use; 0 measures from a cold
    /// start.
    #[arg(long, global = true, default_value_t = 500)]
    pub warm_up: u64,
    /// Append one CSV line per measured lead to this file: path, ms from the run's first
    /// POST to this one's, intake ms, e2e ms (empty when it never arrived).
    #[arg(long, global = true)]
    pub trace: Option<PathBuf>,
    /// Use the api and worker binaries next to this one as they are, without `cargo build`
    /// (the test command has built them).
    #[arg(long, global = true)]
    pub prebuilt: bool,
    /// Noisy-neighbour: timeout of tenant A's hanging integration, in ms.
    #[arg(long, global = true, default_value_t = 10_000)]
    pub hang_timeout_ms: u32,
    /// Noisy-neighbour: how tenant A's receiver answers. `hang` (until A's timeout) is the
    /// scenario; `ok` is its control, the same traffic with A's leads delivered.
    #[arg(long, global = true, value_enum, default_value_t = Neighbour::Hang)]
    pub neighbour: Neighbour,
    /// Chaos: seconds between worker kills.
    #[arg(long, global = true, default_value_t = 5)]
    pub kill_every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if scenarios::run(cli.scenario, &cli.options).await? {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("bench: the chaos scenario lost leads");
        Ok(ExitCode::FAILURE)
    }
}
