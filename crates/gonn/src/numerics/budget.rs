//! When a computation must stop: a wall-clock deadline and a stop flag that an observer, a signal handler or a
//! Python `KeyboardInterrupt` may raise. Every long loop (local descent, restricted solves, polar restarts) polls
//! [`Budget::expired`], so a run stops within one inner iteration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A deadline and a shared stop flag; the default never expires.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    stop: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// A budget that ends at `deadline` (if any) or when `stop` is raised (if any).
    pub fn new(deadline: Option<Instant>, stop: Option<Arc<AtomicBool>>) -> Self {
        Self { deadline, stop }
    }

    /// Whether the stop flag was raised.
    pub fn interrupted(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Whether the deadline passed.
    pub fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether work should stop now (deadline passed or stop flag raised).
    pub fn expired(&self) -> bool {
        self.interrupted() || self.timed_out()
    }

    /// The same stop flag with the deadline moved to at least `grace` from now (never earlier than this one's).
    pub fn at_least(&self, grace: std::time::Duration) -> Self {
        let late = Instant::now() + grace;
        Self { deadline: self.deadline.map(|d| d.max(late)), stop: self.stop.clone() }
    }

    /// The same stop flag with the deadline moved to at most `limit` from now (never later than this one's).
    pub fn within(&self, limit: std::time::Duration) -> Self {
        let soon = Instant::now() + limit;
        Self { deadline: Some(self.deadline.map_or(soon, |d| d.min(soon))), stop: self.stop.clone() }
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `within` never moves a deadline later, `at_least` never earlier.
    #[test]
    fn within_and_at_least_clamp_the_deadline() {
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        let b = Budget::new(Some(soon), None);
        assert_eq!(b.within(std::time::Duration::from_secs(60)).deadline(), Some(soon));
        assert!(b.within(std::time::Duration::from_secs(1)).deadline().unwrap() < soon);
        assert_eq!(b.at_least(std::time::Duration::from_secs(1)).deadline(), Some(soon));
        assert!(b.at_least(std::time::Duration::from_secs(60)).deadline().unwrap() > soon);
        assert!(Budget::default().within(std::time::Duration::from_secs(1)).deadline().is_some());
        assert!(Budget::default().at_least(std::time::Duration::from_secs(1)).deadline().is_none());
    }

    #[test]
    fn expires_on_deadline_or_flag() {
        assert!(!Budget::default().expired());
        assert!(Budget::new(Some(Instant::now()), None).timed_out());
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget::new(None, Some(flag.clone()));
        assert!(!b.expired());
        flag.store(true, Ordering::Relaxed);
        assert!(b.expired() && b.interrupted() && !b.timed_out());
    }
}
