//! Client request latency histograms for `/metrics`, one per operation, in
//! the Prometheus histogram type (cumulative `_bucket{le=...}` counters,
//! `_sum` and `_count`). Recording is a few relaxed atomic adds, from any
//! HTTP handler.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the last bucket, `+Inf`,
/// is implicit): 100 µs to 5 s, the range of a request that did not time
/// out.
pub const BOUNDS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// The operations of the client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Delete,
    Cas,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Get, Op::Put, Op::Delete, Op::Cas];

    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::Cas => "cas",
        }
    }
}

/// One histogram: non-cumulative counts per bucket (the last is `+Inf`).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// How many requests were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// The request latency histograms of one node.
#[derive(Debug, Default)]
pub struct Latencies {
    hists: [Histogram; 4],
}

impl Latencies {
    pub fn get(&self, op: Op) -> &Histogram {
        &self.hists[op as usize]
    }

    /// Records that a request of `op` took `d` (from its arrival to its
    /// answer, whatever the answer).
    pub fn record(&self, op: Op, d: Duration) {
        self.get(op).record(d);
    }

    /// The histograms in the Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        let name = "raftkv_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Client request latency by operation, from arrival to answer."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for op in Op::ALL {
            let h = self.get(op);
            let op = op.name();
            // One snapshot of the counters, so that the buckets, the +Inf
            // bucket and the count agree.
            let counts: Vec<u64> = h
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let mut cumulative = 0;
            for (i, bound) in BOUNDS_US.iter().enumerate() {
                cumulative += counts[i];
                let le = *bound as f64 / 1e6;
                let _ = writeln!(out, "{name}_bucket{{op=\"{op}\",le=\"{le}\"}} {cumulative}");
            }
            cumulative += counts[BOUNDS_US.len()];
            let _ = writeln!(out, "{name}_bucket{{op=\"{op}\",le=\"+Inf\"}} {cumulative}");
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{op=\"{op}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{op=\"{op}\"}} {cumulative}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn buckets_are_cumulative_and_agree_with_count_and_sum() {
        let l = Latencies::default();
        l.record(Op::Put, Duration::from_micros(80)); // <= 100 µs
        l.record(Op::Put, Duration::from_micros(100)); // <= 100 µs (le is inclusive)
        l.record(Op::Put, Duration::from_micros(101)); // <= 250 µs
        l.record(Op::Put, Duration::from_millis(3)); // <= 5 ms
        l.record(Op::Put, Duration::from_secs(9)); // +Inf only
        l.record(Op::Get, Duration::from_millis(20)); // <= 25 ms
        let mut text = String::new();
        l.render(&mut text);
        let b = |op: &str, le: &str| {
            value(
                &text,
                &format!("raftkv_request_duration_seconds_bucket{{op=\"{op}\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(b("put", "0.0001"), 2.0);
        assert_eq!(b("put", "0.00025"), 3.0);
        assert_eq!(b("put", "0.0025"), 3.0);
        assert_eq!(b("put", "0.005"), 4.0);
        assert_eq!(b("put", "5"), 4.0);
        assert_eq!(b("put", "+Inf"), 5.0);
        assert_eq!(b("get", "0.01"), 0.0);
        assert_eq!(b("get", "0.025"), 1.0);
        assert_eq!(b("cas", "+Inf"), 0.0);
        assert_eq!(
            value(&text, "raftkv_request_duration_seconds_count{op=\"put\"}"),
            5.0
        );
        let sum = value(&text, "raftkv_request_duration_seconds_sum{op=\"put\"}");
        assert!((sum - 9.003281).abs() < 1e-9, "{sum}");
        assert_eq!(
            text.matches("# TYPE raftkv_request_duration_seconds histogram")
                .count(),
            1
        );
        // Every op has its series, with buckets in increasing order of le.
        for op in Op::ALL {
            let les: Vec<f64> = text
                .lines()
                .filter(|l| l.contains(&format!("_bucket{{op=\"{}\"", op.name())))
                .map(|l| {
                    let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    }
                })
                .collect();
            assert_eq!(les.len(), BOUNDS_US.len() + 1);
            assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
        }
    }
}
