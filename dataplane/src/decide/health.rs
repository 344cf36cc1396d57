//! Rise/fall health state of one backend, fed by active checks and passive observations.

/// Health of one backend. Starts healthy (a fresh route takes traffic at once; checks take it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTracker {
    healthy: bool,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl HealthTracker {
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            healthy: true,
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Record one check result; returns `Some(new_health)` when the state flips.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let need = if self.healthy { self.fall } else { self.rise };
        if self.streak >= need {
            self.healthy = ok;
            self.streak = 0;
            Some(ok)
        } else {
            None
        }
    }
}

/// What a UDP probe saw before its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome<'a> {
    /// The backend answered with this datagram.
    Reply(&'a [u8]),
    /// Nothing came back.
    Silent,
    /// Port unreachable (ICMP), or the probe could not be sent.
    Failed,
}

/// A UDP probe's verdict: a refusal always fails; with `expect`, only a reply containing it
/// passes; without, any reply or silence passes.
pub fn udp_probe_ok(expect: Option<&[u8]>, outcome: ProbeOutcome<'_>) -> bool {
    match (outcome, expect) {
        (ProbeOutcome::Failed, _) | (ProbeOutcome::Silent, Some(_)) => false,
        (ProbeOutcome::Silent | ProbeOutcome::Reply(_), None) => true,
        (ProbeOutcome::Reply(r), Some(e)) => r.windows(e.len()).any(|w| w == e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_probe_verdicts() {
        use ProbeOutcome::*;
        assert!(udp_probe_ok(None, Silent), "silence is no refusal");
        assert!(udp_probe_ok(None, Reply(b"x")));
        assert!(!udp_probe_ok(None, Failed));
        assert!(udp_probe_ok(Some(b"pong"), Reply(b"+pong 1")));
        assert!(!udp_probe_ok(Some(b"pong"), Reply(b"pon")));
        assert!(
            !udp_probe_ok(Some(b"pong"), Silent),
            "an expected reply must come"
        );
        assert!(!udp_probe_ok(Some(b"pong"), Failed));
    }

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut h = HealthTracker::new(2, 3);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None); // streak reset
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert!(!h.is_healthy());
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
        assert!(h.is_healthy());
    }

    #[test]
    fn rise_fall_of_one_flip_at_once() {
        let mut h = HealthTracker::new(1, 1);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), Some(true));
    }
}
