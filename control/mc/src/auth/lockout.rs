//! Login lockout after failed attempts, as upstream: from 3 consecutive failures a login is
//! refused for 60 s after the last failure, from 10 for 300 s. A pure state machine over the
//! user's `(failed_logins, last_failed_login)`; times are Unix seconds.
//!
//! While locked, a login is refused before its password is checked (a correct password too),
//! and the refused attempt changes nothing: it neither counts as a failure nor extends the
//! lock. Once the lock has run out, the next wrong password counts on from where the counter
//! was, so an attacker gets one guess per lock period; a successful login resets the counter.

/// Thresholds and lock durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutConfig {
    pub threshold1: u32,
    pub lock1_secs: i64,
    pub threshold2: u32,
    pub lock2_secs: i64,
}

impl Default for LockoutConfig {
    /// Upstream's `FailedLoginLockoutThreshold1/2`: 3 → 60 s, 10 → 300 s.
    fn default() -> Self {
        LockoutConfig {
            threshold1: 3,
            lock1_secs: 60,
            threshold2: 10,
            lock2_secs: 300,
        }
    }
}

/// The failed-login state kept with the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub failed_logins: u32,
    /// Unix seconds of the last failure.
    pub last_failed_login: i64,
}

/// Whether a login may be attempted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Allowed,
    Locked {
        /// Seconds until a login may be attempted again (≥ 1).
        retry_after: i64,
        failed_logins: u32,
    },
}

impl Gate {
    /// Upstream's message for a refused login.
    pub fn message(&self) -> Option<String> {
        match *self {
            Gate::Allowed => None,
            Gate::Locked {
                retry_after,
                failed_logins,
            } => Some(format!(
                "Login temporarily disabled due to {failed_logins} failed login attempts, \
                 please try again in {retry_after} seconds"
            )),
        }
    }
}

impl LoginFailures {
    /// May a login be attempted at `now`?
    pub fn gate(self, now: i64, cfg: &LockoutConfig) -> Gate {
        let lock = if self.failed_logins >= cfg.threshold2 {
            cfg.lock2_secs
        } else if self.failed_logins >= cfg.threshold1 {
            cfg.lock1_secs
        } else {
            return Gate::Allowed;
        };
        let until = self.last_failed_login.saturating_add(lock);
        if now < until {
            Gate::Locked {
                retry_after: until - now,
                failed_logins: self.failed_logins,
            }
        } else {
            Gate::Allowed
        }
    }

    /// The state after a wrong password at `now` (only for an attempt the gate allowed).
    pub fn after_failure(self, now: i64) -> LoginFailures {
        LoginFailures {
            failed_logins: self.failed_logins.saturating_add(1),
            last_failed_login: now,
        }
    }

    /// The state after a successful login.
    pub fn after_success(self) -> LoginFailures {
        LoginFailures {
            failed_logins: 0,
            last_failed_login: self.last_failed_login,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(failed_logins: u32, last_failed_login: i64) -> LoginFailures {
        LoginFailures {
            failed_logins,
            last_failed_login,
        }
    }

    fn locked(retry_after: i64, failed_logins: u32) -> Gate {
        Gate::Locked {
            retry_after,
            failed_logins,
        }
    }

    #[test]
    fn gate_table() {
        let c = LockoutConfig::default();
        let t = 1_000_000;
        let rows = [
            (st(0, 0), t, Gate::Allowed),
            (st(2, t), t, Gate::Allowed),
            (st(3, t), t, locked(60, 3)),
            (st(3, t), t + 59, locked(1, 3)),
            (st(3, t), t + 60, Gate::Allowed),
            (st(9, t), t + 30, locked(30, 9)),
            (st(10, t), t, locked(300, 10)),
            (st(10, t), t + 60, locked(240, 10)),
            (st(10, t), t + 299, locked(1, 10)),
            (st(10, t), t + 300, Gate::Allowed),
            (st(50, t), t + 100, locked(200, 50)),
            // A clock that went backwards still locks (never negative retry).
            (st(3, t), t - 10, locked(70, 3)),
        ];
        for (s, now, want) in rows {
            assert_eq!(s.gate(now, &c), want, "{s:?} at {now}");
        }
        assert_eq!(
            locked(42, 3).message().unwrap(),
            "Login temporarily disabled due to 3 failed login attempts, please try again in 42 \
             seconds"
        );
        assert_eq!(Gate::Allowed.message(), None);
    }

    #[test]
    fn attempts_sequence() {
        let c = LockoutConfig::default();
        let mut s = LoginFailures::default();
        let mut now = 100;
        for _ in 0..3 {
            assert_eq!(s.gate(now, &c), Gate::Allowed);
            s = s.after_failure(now);
            now += 1;
        }
        assert_eq!(s.gate(now, &c), locked(59, 3));
        // After the lock, one more guess; wrong again: locked again, counter on.
        now = 102 + 60;
        assert_eq!(s.gate(now, &c), Gate::Allowed);
        s = s.after_failure(now);
        assert_eq!(s, st(4, now));
        assert_eq!(s.gate(now + 1, &c), locked(59, 4));
        // Reaching 10 failures: the long lock.
        for _ in 4..10 {
            now += 60;
            assert_eq!(s.gate(now, &c), Gate::Allowed);
            s = s.after_failure(now);
        }
        assert_eq!(s.gate(now, &c), locked(300, 10));
        // A success resets the counter.
        now += 300;
        assert_eq!(s.gate(now, &c), Gate::Allowed);
        s = s.after_success();
        assert_eq!(s.failed_logins, 0);
        assert_eq!(s.gate(now, &c), Gate::Allowed);
    }
}
