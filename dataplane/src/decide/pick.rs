//! Backend choice: round robin over healthy backends, each tried at most once per connection,
//! failing open (trying every backend) when none is healthy.

/// Yields backend indices to try, in order, for one connection.
///
/// Starts at a round-robin offset. First pass: healthy backends only. If the first pass finds
/// none (every backend is down or ejected), a second pass tries all of them: fail-open, because a
/// health check that is wrong must not black-hole a tenant. Capacity (connection caps) is checked
/// by the caller, which simply asks for the next index when a backend is full.
#[derive(Debug, Clone)]
pub struct AttemptOrder {
    n: usize,
    start: usize,
    step: usize,
    pass: u8,
    found_healthy: bool,
}

impl AttemptOrder {
    pub fn new(n: usize, rr: usize) -> Self {
        Self {
            n,
            start: if n == 0 { 0 } else { rr % n },
            step: 0,
            pass: 0,
            found_healthy: false,
        }
    }

    /// The next backend index to try; `healthy(i)` reports backend `i`'s current health.
    pub fn next_index(&mut self, healthy: impl Fn(usize) -> bool) -> Option<usize> {
        loop {
            if self.step == self.n {
                if self.pass == 0 && !self.found_healthy && self.n > 0 {
                    self.pass = 1;
                    self.step = 0;
                } else {
                    return None;
                }
            }
            let i = (self.start + self.step) % self.n;
            self.step += 1;
            if self.pass == 1 {
                return Some(i);
            }
            if healthy(i) {
                self.found_healthy = true;
                return Some(i);
            }
        }
    }

    /// True once the order fell back to trying unhealthy backends.
    pub fn failed_open(&self) -> bool {
        self.pass == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut o: AttemptOrder, h: &[bool]) -> Vec<usize> {
        let mut v = Vec::new();
        while let Some(i) = o.next_index(|i| h[i]) {
            v.push(i);
        }
        v
    }

    #[test]
    fn round_robin_over_healthy_each_once() {
        let h = [true, false, true, true];
        assert_eq!(all(AttemptOrder::new(4, 0), &h), [0, 2, 3]);
        assert_eq!(all(AttemptOrder::new(4, 1), &h), [2, 3, 0]);
        assert_eq!(all(AttemptOrder::new(4, 7), &h), [3, 0, 2]);
    }

    #[test]
    fn fails_open_when_all_down() {
        let mut o = AttemptOrder::new(3, 1);
        assert_eq!(o.next_index(|_| false), Some(1));
        assert!(o.failed_open());
        assert_eq!(all(AttemptOrder::new(3, 1), &[false; 3]), [1, 2, 0]);
    }

    #[test]
    fn no_fail_open_when_some_healthy() {
        assert_eq!(all(AttemptOrder::new(3, 0), &[false, true, false]), [1]);
    }

    #[test]
    fn empty() {
        assert_eq!(all(AttemptOrder::new(0, 5), &[]), Vec::<usize>::new());
    }
}
