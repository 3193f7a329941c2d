//! The last backend exchanges, for support: every call the worker makes gets a request id that
//! tags its log lines (a tracing span), and a masked summary of the last [`KEPT`] calls is kept
//! in a small ring in memory. The same summary is logged, so a separate process (the
//! `export-logs` command) finds the exchanges in the log files.

use super::redact::mask_text;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many exchanges the ring keeps: a visit makes a handful, so this covers the last visits.
pub const KEPT: usize = 100;

/// What the log line of an exchange says, so that exchanges can be found in the log files.
pub const LOG_MARKER: &str = "backend call";

/// One finished backend call, masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub request_id: String,
    /// When the call started, milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub duration_ms: u64,
    /// "identify", "calculate", "hold", "commit", "void".
    pub call: String,
    /// The workflow's request number.
    pub request: u64,
    /// What was asked, masked.
    pub what: String,
    /// "ok", or the backend's refusal, masked.
    pub outcome: String,
}

impl Exchange {
    /// One line for the bundle: `2025-06-01T10:11:12Z req=… identify (request 3, 4 ms): ok; what`.
    pub fn line(&self) -> String {
        format!(
            "{} request_id={} call={} request={} ms={} outcome={} what={}",
            super::utc_stamp(self.started_ms),
            self.request_id,
            self.call,
            self.request,
            self.duration_ms,
            self.outcome,
            self.what
        )
    }
}

/// A backend call in progress: its request id and when it started.
pub struct Started {
    pub request_id: String,
    started_ms: i64,
    started: Instant,
}

impl Started {
    /// A new request id (`<run>-<n>`: the run's start in base 36, then a counter), unique across
    /// runs of the till.
    pub fn new() -> Started {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static RUN: OnceLock<String> = OnceLock::new();
        let run = RUN.get_or_init(|| base36(now_ms().unsigned_abs()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        Started {
            request_id: format!("{run}-{n}"),
            started_ms: now_ms(),
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Keeps the finished call's masked summary in the ring and returns it.
    pub fn finish(self, call: &str, request: u64, what: &str, refusal: Option<&str>) -> Exchange {
        let exchange = Exchange {
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            request_id: self.request_id,
            started_ms: self.started_ms,
            call: call.to_string(),
            request,
            what: mask_text(what),
            outcome: refusal.map_or_else(|| "ok".to_string(), mask_text),
        };
        ring().push(exchange.clone());
        exchange
    }
}

impl Default for Started {
    fn default() -> Self {
        Started::new()
    }
}

/// A bounded ring of exchanges.
pub struct Ring {
    kept: Mutex<VecDeque<Exchange>>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            kept: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    pub fn push(&self, exchange: Exchange) {
        // A panic elsewhere while holding the lock leaves the ring usable: it is only a list.
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() == self.capacity {
            kept.pop_front();
        }
        kept.push_back(exchange);
    }

    /// The kept exchanges, oldest first.
    pub fn snapshot(&self) -> Vec<Exchange> {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.iter().cloned().collect()
    }
}

/// The process's ring: backend calls are made by one worker per window, and the export reads
/// what that worker did, like the log files every thread writes to.
pub fn ring() -> &'static Ring {
    static RING: OnceLock<Ring> = OnceLock::new();
    RING.get_or_init(|| Ring::new(KEPT))
}

/// The last exchanges of this run, oldest first.
pub fn recent() -> Vec<Exchange> {
    ring().snapshot()
}

/// The last `limit` exchange lines in log text (oldest first): what a separate process can know
/// of the last exchanges.
pub fn from_log_lines<'a>(lines: impl Iterator<Item = &'a str>, limit: usize) -> Vec<String> {
    let mut found: VecDeque<String> = VecDeque::with_capacity(limit);
    for line in lines {
        if line.contains(LOG_MARKER) && line.contains("request_id=") {
            if found.len() == limit {
                found.pop_front();
            }
            found.push_back(line.to_string());
        }
    }
    found.into()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        let d = (n % 36) as u8;
        digits.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: u64) -> Exchange {
        Exchange {
            request_id: format!("r-{n}"),
            started_ms: 0,
            duration_ms: 1,
            call: "identify".to_string(),
            request: n,
            what: String::new(),
            outcome: "ok".to_string(),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_ones_in_order() {
        let ring = Ring::new(3);
        for n in 1..=5 {
            ring.push(exchange(n));
        }
        let kept: Vec<u64> = ring.snapshot().iter().map(|e| e.request).collect();
        assert_eq!(kept, [3, 4, 5]);
    }

    #[test]
    fn request_ids_are_unique_and_summaries_masked() {
        let a = Started::new();
        let b = Started::new();
        assert_ne!(a.request_id, b.request_id);
        let id = a.request_id.clone();
        let done = a.finish("identify", 7, "Manual +79161234567", Some("no guest for 2000000000015"));
        assert_eq!(done.request_id, id);
        assert!(!done.what.contains("9161234567"), "{}", done.what);
        assert!(!done.outcome.contains("2000000000015"), "{}", done.outcome);
        assert!(recent().iter().any(|e| e.request_id == id));
        assert!(done.line().contains(&format!("request_id={id}")));
    }

    #[test]
    fn exchanges_are_found_in_log_lines() {
        let log = "a backend call succeeded request_id=x-1\nother line\nb backend call refused request_id=x-2\n\
                   c backend call succeeded request_id=x-3\n";
        assert_eq!(
            from_log_lines(log.lines(), 2),
            [
                "b backend call refused request_id=x-2",
                "c backend call succeeded request_id=x-3"
            ]
        );
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
    }
}
