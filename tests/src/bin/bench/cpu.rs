//! The machine's busy CPU time, from `/proc/stat` (Linux): what a run cost all of its
//! processes together (PostgreSQL, Redis, the api, the workers and the bench itself).
//! On a shared machine it is steadier than a latency percentile, so it shows a change in
//! the work per lead that the percentiles' spread hides.

/// `/proc/stat` counts in USER_HZ, 100 per second in Linux's ABI on x86 and arm64.
const TICKS_PER_S: f64 = 100.0;

/// Busy time of all cores since boot, in ms (user, nice, system, irq, softirq and steal:
/// everything but idle and iowait); None where `/proc/stat` cannot be read.
pub fn busy_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy as f64 * 1000.0 / TICKS_PER_S)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_tenth_of_a_second_of_work_shows_as_busy_time() {
        let before = busy_ms().expect("/proc/stat is readable on Linux");
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let busy = busy_ms().expect("/proc/stat is readable on Linux") - before;
        assert!(busy >= 50.0, "100 ms of work counted as {busy} ms");
    }
}
