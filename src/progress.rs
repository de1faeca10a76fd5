//! Progress of long work on stderr: indicatif's bar with an ETA on a
//! terminal; anywhere else (a batch job's log, a pipe) one plain line with
//! the same figures every [`LOG_EVERY`] and at the end, so that logs show
//! progress too (indicatif draws nothing off a terminal). An embedding
//! program (the Python package) may set an [`Observer`] instead: it then
//! gets every step and nothing is drawn here.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Told `(what, done, len)` when a shown progress starts, at every step and
/// when it finishes (`done == len` unless cut short), in place of the bar.
pub type Observer = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

static OBSERVER: Mutex<Option<Observer>> = Mutex::new(None);
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Sets (or, with `None`, removes) the process's progress observer and
/// clears [`cancel`]; returns the observer it replaces.
pub fn set_observer(o: Option<Observer>) -> Option<Observer> {
    CANCELLED.store(false, Ordering::SeqCst);
    std::mem::replace(&mut *OBSERVER.lock().unwrap_or_else(|e| e.into_inner()), o)
}

/// Asks the work under way to stop (an observer's Ctrl-C): scoring stops
/// with an error after the networks in flight, keeping every finished one.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Whether [`cancel`] was called since the observer was last set.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// The error of work stopped by [`cancel`].
pub const CANCELLED_MESSAGE: &str = "interrupted: every network scored so far is kept";

fn observer() -> Option<Observer> {
    OBSERVER.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// How often a log (stderr not a terminal) gets a progress line.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Networks done out of a known number.
pub struct Progress {
    bar: ProgressBar,
    log: Option<Log>,
    observed: Option<Observed>,
}

struct Observed {
    to: Observer,
    what: String,
    len: u64,
    done: u64,
}

struct Log {
    what: String,
    len: u64,
    done: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    /// Progress over `len` networks, called `what` (nothing shown when `quiet`).
    pub fn new(len: u64, what: &str, quiet: bool) -> Self {
        if quiet {
            return Self { bar: ProgressBar::hidden(), log: None, observed: None };
        }
        if let Some(to) = observer() {
            to(what, 0, len);
            let observed = Observed { to, what: what.to_string(), len, done: 0 };
            return Self { bar: ProgressBar::hidden(), log: None, observed: Some(observed) };
        }
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            let log = Log { what: what.to_string(), len, done: 0, start: now, last: now };
            return Self { bar: ProgressBar::hidden(), log: Some(log), observed: None };
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} nets, {per_sec}, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Self { bar, log: None, observed: None }
    }

    /// One more network done.
    pub fn inc(&mut self) {
        self.bar.inc(1);
        if let Some(o) = &mut self.observed {
            o.done += 1;
            (o.to)(&o.what, o.done, o.len);
        }
        if let Some(l) = &mut self.log {
            l.done += 1;
            if l.last.elapsed() >= LOG_EVERY {
                l.last = Instant::now();
                eprintln!("{}", line(&l.what, l.done, l.len, l.start.elapsed()));
            }
        }
    }

    /// Clears the bar; a log that got progress lines gets the final one
    /// (work shorter than [`LOG_EVERY`] logs nothing).
    pub fn finish(self) {
        self.bar.finish_and_clear();
        if let Some(o) = &self.observed {
            (o.to)(&o.what, o.done, o.len);
        }
        if let Some(l) = self.log.filter(|l| l.start.elapsed() >= LOG_EVERY) {
            eprintln!("{}", line(&l.what, l.done, l.len, l.start.elapsed()));
        }
    }
}

/// `what: done/len nets (P%), R nets/s, ETA T` (`in T` once done).
pub fn line(what: &str, done: u64, len: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let pct = if len > 0 { 100.0 * done as f64 / len as f64 } else { 100.0 };
    let tail = if done >= len {
        format!("in {}", clock(secs))
    } else if rate > 0.0 {
        format!("ETA {}", clock((len - done) as f64 / rate))
    } else {
        "ETA unknown".to_string()
    };
    format!("{what}: {done}/{len} nets ({pct:.1}%), {rate:.2} nets/s, {tail}")
}

/// `1h02m03s`, `4m05s`, `6s`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_give_rate_and_eta() {
        let l = line("scoring", 30, 120, Duration::from_secs(20));
        assert_eq!(l, "scoring: 30/120 nets (25.0%), 1.50 nets/s, ETA 1m00s");
        let l = line("scoring", 1, 8085, Duration::from_secs(2));
        assert_eq!(l, "scoring: 1/8085 nets (0.0%), 0.50 nets/s, ETA 4h29m28s");
        assert_eq!(line("scoring", 5, 5, Duration::from_secs(7)), "scoring: 5/5 nets (100.0%), 0.71 nets/s, in 7s");
        assert_eq!(line("scoring", 0, 5, Duration::ZERO), "scoring: 0/5 nets (0.0%), 0.00 nets/s, ETA unknown");
    }

    #[test]
    fn an_observer_gets_every_step_and_quiet_progress_tells_it_nothing() {
        let seen: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::default();
        let s2 = seen.clone();
        let before = set_observer(Some(Arc::new(move |w: &str, d, l| s2.lock().unwrap().push((w.into(), d, l)))));
        let mut p = Progress::new(2, "observed test", false);
        p.inc();
        p.inc();
        p.finish();
        let mut q = Progress::new(3, "quiet test", true);
        q.inc();
        q.finish();
        set_observer(before);
        // other tests' progress (run at the same time) may reach the observer too
        let got: Vec<_> = seen.lock().unwrap().iter().filter(|s| s.0.contains("test")).cloned().collect();
        let want: Vec<(String, u64, u64)> =
            [(0, 2), (1, 2), (2, 2), (2, 2)].iter().map(|(d, l)| ("observed test".into(), *d, *l)).collect();
        assert_eq!(got, want);
    }
}
