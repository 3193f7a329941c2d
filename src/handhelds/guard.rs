//! The waiter PIN check and its brake on guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Wrong PINs one address may send within [`WINDOW`] before it is locked out.
pub const MAX_WRONG_PINS: u32 = 5;
/// The window wrong PINs are counted in, and how long a lock-out lasts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Addresses remembered at most; the oldest is forgotten first, so a flood of addresses cannot
/// grow the table without bound.
const MAX_TRACKED: usize = 1_024;

/// Whether `pin` is one of the configured PINs. Every configured PIN is compared in full, with
/// no early exit on the first differing byte, so the answer time says nothing about how close a
/// guess was.
pub fn pin_matches(pin: &str, configured: &[String]) -> bool {
    let mut found = false;
    for candidate in configured {
        if candidate.is_empty() {
            continue;
        }
        let (a, b) = (pin.as_bytes(), candidate.as_bytes());
        let mut diff = u8::from(a.len() != b.len());
        for (i, expected) in b.iter().enumerate() {
            diff |= a.get(i).copied().unwrap_or(0) ^ expected;
        }
        found |= diff == 0;
    }
    found
}

#[derive(Clone, Copy, Debug)]
struct Tries {
    wrong: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Wrong PINs per client address.
#[derive(Default)]
pub struct PinGate {
    tries: HashMap<IpAddr, Tries>,
}

impl PinGate {
    /// `Some(wait)` while the address is locked out: its requests are refused before the PIN is
    /// even looked at, so a right guess during the lock-out teaches nothing.
    pub fn locked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let tries = self.tries.get(&ip)?;
        match tries.locked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.tries.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Counts a wrong PIN; returns the lock-out it started, if any.
    pub fn wrong(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.tries.contains_key(&ip)
            && self.tries.len() >= MAX_TRACKED
            && let Some(oldest) = self.tries.iter().min_by_key(|(_, t)| t.since).map(|(ip, _)| *ip)
        {
            self.tries.remove(&oldest);
        }
        let tries = self.tries.entry(ip).or_insert(Tries {
            wrong: 0,
            since: now,
            locked_until: None,
        });
        if now.duration_since(tries.since) > WINDOW {
            *tries = Tries {
                wrong: 0,
                since: now,
                locked_until: None,
            };
        }
        tries.wrong += 1;
        if tries.wrong >= MAX_WRONG_PINS {
            tries.locked_until = Some(now + WINDOW);
            return Some(WINDOW);
        }
        None
    }

    /// A right PIN clears the address's count.
    pub fn right(&mut self, ip: IpAddr) {
        self.tries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_compare_exactly() {
        let pins = vec!["1234".to_string(), String::new(), "98765".to_string()];
        assert!(pin_matches("1234", &pins));
        assert!(pin_matches("98765", &pins));
        assert!(!pin_matches("", &pins), "an empty configured PIN admits nobody");
        assert!(!pin_matches("123", &pins));
        assert!(!pin_matches("12345", &pins));
        assert!(!pin_matches("1234\0", &pins));
    }

    #[test]
    fn five_wrong_pins_lock_the_address_for_the_window() {
        let ip: IpAddr = [192, 168, 0, 7].into();
        let other: IpAddr = [192, 168, 0, 8].into();
        let start = Instant::now();
        let mut gate = PinGate::default();
        for i in 0..MAX_WRONG_PINS - 1 {
            assert_eq!(gate.wrong(ip, start + Duration::from_secs(u64::from(i))), None);
        }
        assert_eq!(gate.locked(ip, start), None);
        assert_eq!(gate.wrong(ip, start + Duration::from_secs(10)), Some(WINDOW));
        assert!(gate.locked(ip, start + Duration::from_secs(11)).is_some());
        assert_eq!(gate.locked(other, start), None, "another handheld is not locked out");
        assert_eq!(gate.locked(ip, start + Duration::from_secs(10) + WINDOW), None);
        // Wrong PINs spread wider than the window never add up to a lock-out.
        for i in 0..20u64 {
            assert_eq!(
                gate.wrong(other, start + (WINDOW + Duration::from_secs(1)) * i as u32),
                None
            );
        }
        gate.right(ip);
        assert_eq!(gate.locked(ip, start), None);
    }
}
