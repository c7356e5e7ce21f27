//! Per-process CPU and run-queue wait over time: fixed buckets filled from the differences of
//! successive cumulative readings, and the bounded series a report carries.

use std::collections::HashMap;

use super::report::{Process, Series, Timeline};
use crate::collect::cumulative::Cumulative;

/// Most buckets kept: a longer run merges neighbours (doubling the interval) rather than grow,
/// so a day at one-second ticks still holds at most an hour's worth of points per process.
pub const MAX_BUCKETS: usize = 3600;
/// Series kept by CPU used over the run, busiest first.
pub const TOP_CPU: usize = 10;
/// Series kept by run-queue wait over the run, most waiting first (when not already kept).
pub const TOP_WAIT: usize = 5;

/// A process's figures in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Point {
    bucket: usize,
    cpu_ns: u64,
    runq_wait_ns: u64,
}

/// Collects buckets while the run goes on. Points are kept only where a process did something,
/// so memory follows activity, and at most `MAX_BUCKETS` per process.
#[derive(Debug, Clone)]
pub struct TimelineBuilder {
    interval_s: f64,
    /// Start and length of each bucket, in nanoseconds after the run began, and how many
    /// pushes it holds.
    buckets: Vec<(u64, u64, u32)>,
    /// Pushes per bucket: doubles at each coarsening.
    per_bucket: u32,
    points: HashMap<u32, Vec<Point>>,
    max_buckets: usize,
}

impl TimelineBuilder {
    pub fn new(interval_s: f64) -> Self {
        Self::with_max_buckets(interval_s, MAX_BUCKETS)
    }

    fn with_max_buckets(interval_s: f64, max_buckets: usize) -> Self {
        Self {
            interval_s,
            buckets: Vec::new(),
            per_bucket: 1,
            points: HashMap::new(),
            max_buckets: max_buckets.max(2),
        }
    }

    /// Adds a bucket starting `start_ns` after the run began and lasting `len_ns`, holding
    /// `delta`: the difference of two cumulative readings (`Cumulative::since`).
    /// Once coarsened, a bucket takes several pushes before the next one starts.
    pub fn push(&mut self, start_ns: u64, len_ns: u64, delta: &Cumulative) {
        match self.buckets.last_mut() {
            Some((_, len, pushes)) if *pushes < self.per_bucket => {
                *len += len_ns;
                *pushes += 1;
            }
            _ => {
                if self.buckets.len() == self.max_buckets {
                    self.coarsen();
                }
                self.buckets.push((start_ns, len_ns, 1));
            }
        }
        let bucket = self.buckets.len() - 1;
        let mut add = |tgid: u32, cpu_ns: u64, runq_wait_ns: u64| {
            let points = self.points.entry(tgid).or_default();
            match points.last_mut() {
                Some(last) if last.bucket == bucket => {
                    last.cpu_ns += cpu_ns;
                    last.runq_wait_ns += runq_wait_ns;
                }
                _ => points.push(Point {
                    bucket,
                    cpu_ns,
                    runq_wait_ns,
                }),
            }
        };
        for (&tgid, &ns) in &delta.processes.on_cpu_ns {
            add(tgid, ns, 0);
        }
        for (&tgid, sched) in &delta.sched {
            if sched.runq_wait_ns > 0 {
                add(tgid, 0, sched.runq_wait_ns);
            }
        }
    }

    /// Merges neighbouring buckets pairwise: half as many, twice as long.
    fn coarsen(&mut self) {
        self.interval_s *= 2.0;
        self.per_bucket *= 2;
        self.buckets = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let len = pair.iter().map(|&(_, len, _)| len).sum();
                let pushes = pair.iter().map(|&(_, _, pushes)| pushes).sum();
                (pair[0].0, len, pushes)
            })
            .collect();
        for points in self.points.values_mut() {
            let mut merged: Vec<Point> = Vec::with_capacity(points.len());
            for point in points.iter() {
                let bucket = point.bucket / 2;
                match merged.last_mut() {
                    Some(last) if last.bucket == bucket => {
                        last.cpu_ns += point.cpu_ns;
                        last.runq_wait_ns += point.runq_wait_ns;
                    }
                    _ => merged.push(Point { bucket, ..*point }),
                }
            }
            *points = merged;
        }
    }

    /// The report's timeline: the `TOP_CPU` processes that used the most CPU and the `TOP_WAIT`
    /// that waited longest for one, among `processes` (the report's, so `--pid` filters it too);
    /// a process is named by its first entry there.
    pub fn finish(&self, processes: &[Process]) -> Timeline {
        let names: HashMap<u32, &str> = processes
            .iter()
            .rev()
            .map(|p| (p.pid, p.comm.as_str()))
            .collect();
        let totals: Vec<(u32, u64, u64)> = self
            .points
            .iter()
            .filter(|(tgid, _)| names.contains_key(tgid))
            .map(|(&tgid, points)| {
                let cpu = points.iter().map(|p| p.cpu_ns).sum();
                let wait = points.iter().map(|p| p.runq_wait_ns).sum();
                (tgid, cpu, wait)
            })
            .collect();
        let top = |key: fn(&(u32, u64, u64)) -> u64, n: usize| {
            let mut ranked: Vec<_> = totals.iter().filter(|t| key(t) > 0).collect();
            ranked.sort_by_key(|t| (std::cmp::Reverse(key(t)), t.0));
            ranked.into_iter().take(n).map(|t| t.0).collect::<Vec<_>>()
        };
        let mut chosen = top(|t| t.1, TOP_CPU);
        for tgid in top(|t| t.2, TOP_WAIT) {
            if !chosen.contains(&tgid) {
                chosen.push(tgid);
            }
        }
        let series = chosen
            .into_iter()
            .map(|tgid| {
                let mut cpu_cores = vec![0.0; self.buckets.len()];
                let mut runq_wait_ratio = vec![0.0; self.buckets.len()];
                for point in &self.points[&tgid] {
                    let len = self.buckets[point.bucket].1.max(1) as f64;
                    cpu_cores[point.bucket] = round3(point.cpu_ns as f64 / len);
                    runq_wait_ratio[point.bucket] = round3(point.runq_wait_ns as f64 / len);
                }
                Series {
                    pid: tgid,
                    comm: names[&tgid].to_owned(),
                    cpu_cores,
                    runq_wait_ratio,
                }
            })
            .collect();
        Timeline {
            interval_s: self.interval_s,
            start_offsets_s: self
                .buckets
                .iter()
                .map(|&(start, _, _)| round3(start as f64 / 1e9))
                .collect(),
            series,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use profiler_common::SchedStats;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn delta(cpu: &[(u32, u64)], wait: &[(u32, u64)]) -> Cumulative {
        let mut d = Cumulative::default();
        d.processes.on_cpu_ns = cpu.iter().copied().collect();
        for &(tgid, ns) in wait {
            let mut sched = SchedStats::ZERO;
            sched.runq_wait_ns = ns;
            d.sched.insert(tgid, sched);
        }
        d
    }

    fn process(pid: u32, comm: &str) -> Process {
        let mut p = crate::alerts::fixtures::process(pid, comm, 0.0);
        p.pid = pid;
        p
    }

    #[test]
    fn buckets_hold_cores_and_wait_ratio_of_the_chosen_processes() {
        let mut builder = TimelineBuilder::new(1.0);
        builder.push(0, SEC, &delta(&[(1, SEC), (2, SEC / 2)], &[(3, SEC / 4)]));
        builder.push(SEC, SEC / 2, &delta(&[(1, SEC / 2)], &[]));
        let names = [process(1, "a"), process(2, "b"), process(3, "c")];
        let timeline = builder.finish(&names);
        assert_eq!(timeline.start_offsets_s, vec![0.0, 1.0]);
        let pids: Vec<u32> = timeline.series.iter().map(|s| s.pid).collect();
        assert_eq!(pids, vec![1, 2, 3]);
        assert_eq!(timeline.series[0].cpu_cores, vec![1.0, 1.0]);
        assert_eq!(timeline.series[2].runq_wait_ratio, vec![0.25, 0.0]);
        assert!(
            builder
                .finish(&names[1..])
                .series
                .iter()
                .all(|s| s.pid != 1)
        );
    }

    #[test]
    fn a_long_run_coarsens_instead_of_growing() {
        let mut builder = TimelineBuilder::with_max_buckets(1.0, 4);
        for i in 0..9 {
            builder.push(i * SEC, SEC, &delta(&[(7, SEC)], &[]));
        }
        let timeline = builder.finish(&[process(7, "x")]);
        assert!(timeline.start_offsets_s.len() <= 4);
        assert_eq!(timeline.interval_s, 4.0);
        assert_eq!(timeline.start_offsets_s, vec![0.0, 4.0, 8.0]);
        assert!(timeline.series[0].cpu_cores.iter().all(|&c| c == 1.0));
    }
}
