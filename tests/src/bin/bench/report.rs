//! Figures of a run (from the sends and the receiver's arrivals), the median over runs,
//! and the outputs: percentile tables, the Markdown table and the JSON file.

use crate::{Options, load::Sent, receiver::Receiver};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};
use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    path::Path,
    time::Instant,
};

/// Named figures of one run; a dot nests in JSON (`e2e_ms.p99` → `{"e2e_ms": {"p99"…}}`).
pub type Figures = BTreeMap<&'static str, f64>;

/// A progress bar on a terminal; hidden otherwise, so CI logs stay clean.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target).with_message(what.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to an hour, 3 significant digits: the bounds cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Keys of the intake percentiles (request → 202).
const INTAKE: [&str; 4] = [
    "intake_ms.p50",
    "intake_ms.p95",
    "intake_ms.p99",
    "intake_ms.max",
];
/// Keys of the end-to-end percentiles (request → first arrival at the receiver).
const E2E: [&str; 4] = ["e2e_ms.p50", "e2e_ms.p95", "e2e_ms.p99", "e2e_ms.max"];

/// Prints a percentile table of `h` (µs inside, ms shown) and adds p50, p95, p99 and max
/// as `keys`.
fn percentiles(figures: &mut Figures, keys: [&'static str; 4], h: &Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let name = keys[0].split('.').next().unwrap_or_default();
    println!(
        "  {name:>9}  n={:<7} p50 {:>8.2}  p90 {:>8.2}  p95 {:>8.2}  p99 {:>8.2}  p99.9 {:>8.2}  max {:>8.2}",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.95),
        ms(0.99),
        ms(0.999),
        ms(1.0),
    );
    for (key, q) in keys.into_iter().zip([0.5, 0.95, 0.99, 1.0]) {
        figures.insert(key, ms(q));
    }
}

fn per_s(count: u64, from: Instant, to: Option<Instant>) -> f64 {
    match to.map(|to| to.duration_since(from).as_secs_f64()) {
        Some(secs) if secs > 0.0 => count as f64 / secs,
        _ => 0.0,
    }
}

/// Appends each accepted lead of `sent` to `file` as CSV: path, ms from the first POST to
/// this one's, intake ms, e2e ms (empty when it did not arrive), one line per path.
pub fn trace(file: &Path, sent: &[Sent], receiver: &Receiver, paths: &[String]) -> Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let Some(first) = sent.iter().map(|s| s.at).min() else {
        return Ok(());
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    for path in paths {
        let arrivals = receiver.arrivals(path);
        for s in sent {
            let Ok(lead_id) = &s.lead_id else { continue };
            let e2e = arrivals
                .get(lead_id)
                .map(|at| format!("{:.3}", ms(at.duration_since(s.at))))
                .unwrap_or_default();
            writeln!(
                out,
                "{path},{:.3},{:.3},{e2e}",
                ms(s.at.duration_since(first)),
                ms(s.intake)
            )?;
        }
    }
    Ok(())
}

/// The figures of a run, taken when the drain ended: every accepted lead should have
/// arrived once on each of `paths`; `lost` counts the (lead, path) pairs that did not.
pub fn measure(sent: &[Sent], receiver: &Receiver, paths: &[String]) -> Figures {
    let gave_up = Instant::now();
    let mut figures = Figures::new();
    let (mut intake, mut e2e) = (histogram(), histogram());
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let Some(first) = sent.iter().map(|s| s.at).min() else {
        return figures;
    };
    let mut answered = None;
    let mut accepted = 0;
    for s in sent.iter().filter(|s| s.lead_id.is_ok()) {
        accepted += 1;
        intake.saturating_record(micros(s.intake));
        answered = answered.max(Some(s.at + s.intake));
    }
    if let Some(Err(reason)) = sent.iter().map(|s| &s.lead_id).find(|id| id.is_err()) {
        eprintln!("bench: a lead was rejected: {reason}");
    }
    let (mut deliveries, mut lost, mut duplicates, mut last) = (0, 0, 0, None);
    let mut complete: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths {
        let arrivals = receiver.arrivals(path);
        duplicates += receiver.duplicates(path);
        for s in sent {
            let Ok(lead_id) = &s.lead_id else { continue };
            match arrivals.get(lead_id) {
                Some(at) => {
                    deliveries += 1;
                    *complete.entry(lead_id).or_default() += 1;
                    e2e.saturating_record(micros(at.duration_since(s.at)));
                    last = last.max(Some(*at));
                }
                // Counted at the moment the drain gave up, a lower bound of its latency,
                // so a starved tenant shows in the percentiles instead of vanishing.
                None => {
                    lost += 1;
                    e2e.saturating_record(micros(gave_up.duration_since(s.at)));
                }
            }
        }
    }
    let delivered = complete.values().filter(|n| **n == paths.len()).count() as u64;
    percentiles(&mut figures, INTAKE, &intake);
    percentiles(&mut figures, E2E, &e2e);
    figures.extend([
        ("leads", sent.len() as f64),
        ("accepted", accepted as f64),
        ("rejected", (sent.len() - accepted) as f64),
        ("delivered", delivered as f64),
        ("lost", lost as f64),
        ("duplicates", duplicates as f64),
        ("leads_per_s", per_s(delivered, first, last)),
        ("intake_per_s", per_s(accepted as u64, first, answered)),
    ]);
    if paths.len() > 1 {
        figures.insert("deliveries", deliveries as f64);
        figures.insert("deliveries_per_s", per_s(deliveries, first, last));
    }
    figures
}

/// The result of one scenario over its runs.
pub struct Report {
    pub scenario: &'static str,
    pub runs: Vec<Figures>,
    pub floor: f64,
    /// Figures computed from other scenarios (backlog's `ratio_to_throughput`).
    pub derived: Figures,
}

impl Report {
    /// Each figure's median over the runs (the lower middle one: always a measured value),
    /// plus the floor, the ratio and the derived figures.
    pub fn median(&self) -> Figures {
        let mut median = Figures::new();
        for key in self.runs.iter().flat_map(|r| r.keys().copied()) {
            let mut values: Vec<f64> = self
                .runs
                .iter()
                .filter_map(|r| r.get(key).copied())
                .collect();
            values.sort_by(f64::total_cmp);
            median.insert(key, values[(values.len() - 1) / 2]);
        }
        let rate = median.get(self.rate_key()).copied().unwrap_or(0.0);
        median.insert("floor_leads_per_s", self.floor);
        median.insert(
            "ratio",
            if self.floor > 0.0 {
                rate / self.floor
            } else {
                0.0
            },
        );
        median.extend(self.derived.clone());
        median
    }

    /// The rate compared with the floor: deliveries/s where a lead fans out, else leads/s.
    fn rate_key(&self) -> &'static str {
        let fans_out = self.runs.iter().any(|r| r.contains_key("deliveries_per_s"));
        if fans_out {
            "deliveries_per_s"
        } else {
            "leads_per_s"
        }
    }

    /// Min and max of the rate over the runs.
    fn spread(&self) -> (f64, f64) {
        let rates = self
            .runs
            .iter()
            .filter_map(|r| r.get(self.rate_key()).copied());
        rates.fold((f64::INFINITY, 0.0), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }

    /// The JSON object of this scenario.
    pub fn json(&self) -> Value {
        let mut object = Map::new();
        object.insert("scenario".into(), json!(self.scenario));
        for (key, value) in self.median() {
            let number = if value.fract() == 0.0 && value.abs() < 1e15 {
                json!(value as i64)
            } else {
                json!((value * 100.0).round() / 100.0)
            };
            match key.split_once('.') {
                Some((group, field)) => {
                    let group = object.entry(group).or_insert_with(|| json!({}));
                    group[field] = number;
                }
                None => {
                    object.insert(key.into(), number);
                }
            }
        }
        for group in ["intake_ms", "e2e_ms"] {
            object.entry(group).or_insert(Value::Null);
        }
        let (min, max) = self.spread();
        object.insert("runs".into(), json!(self.runs.len()));
        object.insert(
            "spread".into(),
            json!({ "min": round(min), "max": round(max) }),
        );
        object.insert("machine".into(), json!({ "nproc": nproc() }));
        object.insert("date".into(), json!(chrono::Utc::now().to_rfc3339()));
        object.insert("commit".into(), json!(commit()));
        Value::Object(object)
    }

    /// This scenario's row of the Markdown table.
    fn markdown_row(&self) -> String {
        let m = self.median();
        let get = |key: &str| m.get(key).copied();
        let int = |key: &str| get(key).map_or("—".into(), |v| format!("{v:.0}"));
        let trio = |group: &str| match (
            get(&format!("{group}.p50")),
            get(&format!("{group}.p95")),
            get(&format!("{group}.p99")),
        ) {
            (Some(a), Some(b), Some(c)) => format!("{a:.1} / {b:.1} / {c:.1}"),
            _ => "—".into(),
        };
        let (min, max) = self.spread();
        let delivered = match get("deliveries") {
            Some(d) => format!("{d:.0} deliveries"),
            None => int("delivered"),
        };
        let unit = if self.rate_key() == "deliveries_per_s" {
            " deliveries/s"
        } else {
            ""
        };
        format!(
            "| {} | {} | {} | {} | {} | {:.0}{unit} ({:.0}–{:.0}) | {:.0} | {:.2} | {} | {} |",
            self.scenario,
            int("leads"),
            delivered,
            int("lost"),
            int("duplicates"),
            get(self.rate_key()).unwrap_or(0.0),
            min,
            max,
            self.floor,
            get("ratio").unwrap_or(0.0),
            trio("intake_ms"),
            trio("e2e_ms"),
        )
    }
}

fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 100.0).round() / 100.0
    } else {
        0.0
    }
}

fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The short git commit of the workspace, when git is there.
fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The Markdown table of `reports`.
pub fn markdown(reports: &[Report]) -> String {
    let mut table = format!(
        "Machine: {} cores, {}, commit {}\n\n\
         | scenario | leads | delivered | lost | dups | leads/s (spread) | floor | ratio | intake p50 / p95 / p99 ms | e2e p50 / p95 / p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        nproc(),
        chrono::Utc::now().format("%Y-%m-%d"),
        commit().unwrap_or_else(|| "unknown".into()),
    );
    for report in reports {
        table.push_str(&report.markdown_row());
        table.push('\n');
    }
    table
}

/// Prints the table and writes the files asked for: one JSON object, or an array when
/// `many`.
pub fn write(reports: &[Report], options: &Options, many: bool) -> Result<()> {
    let table = markdown(reports);
    println!("\n{table}");
    if let Some(path) = &options.markdown {
        std::fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &options.json {
        let objects: Vec<Value> = reports.iter().map(Report::json).collect();
        let value = match (many, objects.as_slice()) {
            (false, [.., last]) => last.clone(),
            _ => Value::Array(objects),
        };
        std::fs::write(path, serde_json::to_string_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
