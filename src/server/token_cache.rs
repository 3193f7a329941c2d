//! The tills' tokens a server has already found, kept in memory so that a request does not
//! look its token up in the database every time: the lookup was a statement and a round trip of
//! its own on each request, two per payment.
//!
//! A kept token is only trusted while the database can tell this server of every change to the
//! tokens (PostgreSQL's `LISTEN`, see `pg::watch_token_changes`): while it cannot, nothing is
//! kept and every request looks its token up, as before. Any change clears everything kept;
//! tokens change rarely (a till enrolled, a token replaced or revoked), requests all the time.
//!
//! A lookup that was already under way when a change arrived must not keep what it read: the
//! change may have come after the read. So a lookup notes the [`TokenCache::generation`] before
//! it reads, and [`TokenCache::keep`] keeps nothing if it has moved since.

use super::store::KnownToken;
use crate::domain::UnixSeconds;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// More tokens than any chain has tills: past it nothing more is kept (requests still pass,
/// each looked up), so unknown or random tokens cannot grow the server's memory.
const MAX_KEPT: usize = 10_000;

#[derive(Default)]
pub struct TokenCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The database tells this server of every change to the tokens.
    watching: bool,
    /// Moves on every change and on every start or end of watching.
    generation: u64,
    kept: HashMap<String, KnownToken>,
}

impl State {
    fn forget(&mut self) {
        self.generation += 1;
        self.kept.clear();
    }
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: every change is one
        // assignment or a whole clear.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The till a kept token belongs to, while the database tells us of every change.
    pub fn get(&self, hash: &str) -> Option<KnownToken> {
        let state = self.state();
        if !state.watching {
            return None;
        }
        state.kept.get(hash).cloned()
    }

    /// To be read before a lookup, and given back to [`TokenCache::keep`] with what it found.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps a token found by a lookup that began at `generation`, unless anything changed since.
    pub fn keep(&self, generation: u64, hash: &str, found: KnownToken) {
        let mut state = self.state();
        if state.watching && state.generation == generation && state.kept.len() < MAX_KEPT {
            state.kept.insert(hash.to_string(), found);
        }
    }

    /// The token's last use, noted in the database: kept with it, so that the next note is
    /// written when it is due and not on every request.
    pub fn touched(&self, hash: &str, at: UnixSeconds) {
        if let Some(found) = self.state().kept.get_mut(hash) {
            found.1 = Some(at);
        }
    }

    /// A token was made, replaced or revoked (here or by another server): forget every one.
    pub fn forget_all(&self) {
        self.state().forget();
    }

    /// Whether the database now tells us of every change; either way, what was kept is
    /// forgotten (changes made while nobody listened were never told).
    pub fn set_watching(&self, watching: bool) {
        let mut state = self.state();
        state.forget();
        state.watching = watching;
    }

    pub fn is_watching(&self) -> bool {
        self.state().watching
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::Caller;

    fn till(name: &str) -> KnownToken {
        (
            Caller {
                org: "cafe".to_string(),
                till: name.to_string(),
            },
            None,
        )
    }

    #[test]
    fn nothing_is_kept_unless_the_database_tells_of_every_change() {
        let cache = TokenCache::new();
        let seen = cache.generation();
        cache.keep(seen, "h1", till("till-1"));
        assert_eq!(cache.get("h1"), None, "not watching: every request looks its token up");

        cache.set_watching(true);
        let seen = cache.generation();
        cache.keep(seen, "h1", till("till-1"));
        assert_eq!(cache.get("h1"), Some(till("till-1")));
        assert_eq!(cache.get("h2"), None);

        cache.set_watching(false);
        assert_eq!(cache.get("h1"), None, "watching ended: what was kept is forgotten");
        cache.set_watching(true);
        assert_eq!(cache.get("h1"), None, "and not brought back when it starts again");
    }

    #[test]
    fn a_change_forgets_every_token_and_a_lookup_begun_before_it_keeps_nothing() {
        let cache = TokenCache::new();
        cache.set_watching(true);
        let seen = cache.generation();
        cache.keep(seen, "h1", till("till-1"));

        // A lookup begins, a revocation arrives, then the lookup finds the token (it read
        // before the revocation committed): it must not be kept.
        let before = cache.generation();
        cache.forget_all();
        assert_eq!(cache.get("h1"), None);
        cache.keep(before, "h2", till("till-2"));
        assert_eq!(cache.get("h2"), None, "read before the change: not kept");

        // Watching starting again counts as a change too.
        let before = cache.generation();
        cache.set_watching(false);
        cache.set_watching(true);
        cache.keep(before, "h2", till("till-2"));
        assert_eq!(cache.get("h2"), None);

        let now = cache.generation();
        cache.keep(now, "h2", till("till-2"));
        assert_eq!(cache.get("h2"), Some(till("till-2")));
    }

    #[test]
    fn a_kept_token_notes_its_last_use() {
        let cache = TokenCache::new();
        cache.set_watching(true);
        cache.keep(cache.generation(), "h1", till("till-1"));
        cache.touched("h1", 1_700_000_000);
        assert_eq!(cache.get("h1").and_then(|found| found.1), Some(1_700_000_000));
        cache.touched("unknown", 5);
        assert_eq!(cache.get("unknown"), None, "a note of a token not kept keeps nothing");
    }

    #[test]
    fn the_tokens_kept_are_bounded() {
        let cache = TokenCache::new();
        cache.set_watching(true);
        for n in 0..MAX_KEPT + 10 {
            cache.keep(cache.generation(), &format!("h{n}"), till("till"));
        }
        assert_eq!(cache.state().kept.len(), MAX_KEPT);
        assert_eq!(cache.get(&format!("h{}", MAX_KEPT + 5)), None);
    }
}
