//! Passwords (argon2id), sessions with their CSRF tokens, and the login throttle.

use super::db::Role;
use crate::domain::LoyaltyError;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Failed logins of one login name allowed before it is locked for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);
/// The shortest password `owner create` accepts.
pub const MIN_PASSWORD: usize = 8;

#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: i64,
    pub login: String,
    pub org: String,
    pub role: Role,
    pub csrf: String,
    seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Sessions {
    pub fn open(&self, user_id: i64, login: &str, org: &str, role: Role) -> Result<(String, Session), LoyaltyError> {
        let session = Session {
            user_id,
            login: login.to_string(),
            org: org.to_string(),
            role,
            csrf: random_token()?,
            seen: Instant::now(),
        };
        let token = random_token()?;
        let mut sessions = self.by_token.lock().map_err(|_| poisoned())?;
        sessions.retain(|_, s| s.seen.elapsed() < IDLE);
        sessions.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    /// The session of the request's cookie, still in time.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, "lt_session")?;
        let mut sessions = self.by_token.lock().ok()?;
        let session = sessions.get_mut(&token)?;
        if session.seen.elapsed() >= IDLE {
            sessions.remove(&token);
            return None;
        }
        session.seen = Instant::now();
        Some(session.clone())
    }

    pub fn close(&self, headers: &HeaderMap) {
        if let (Some(token), Ok(mut sessions)) = (cookie(headers, "lt_session"), self.by_token.lock()) {
            sessions.remove(&token);
        }
    }

    /// Closes every other session of `user_id` than the request's own: after a password change,
    /// whoever signed in with the old password (a browser left open, someone who learnt it) is
    /// signed out at their next request. Returns how many were closed.
    pub fn close_others(&self, user_id: i64, headers: &HeaderMap) -> usize {
        let own = cookie(headers, "lt_session");
        let Ok(mut sessions) = self.by_token.lock() else {
            return 0;
        };
        let before = sessions.len();
        sessions.retain(|token, s| s.user_id != user_id || Some(token) == own.as_ref());
        before - sessions.len()
    }

    /// True while the login is locked after too many failures.
    pub fn locked(&self, login: &str) -> bool {
        let Ok(failures) = self.failures.lock() else {
            return true;
        };
        failures
            .get(login)
            .is_some_and(|(count, since)| *count >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    pub fn failed(&self, login: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(login.to_string()).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= LOCKOUT {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
            entry.1 = Instant::now();
        }
    }

    pub fn succeeded(&self, login: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(login);
        }
    }
}

fn poisoned() -> LoyaltyError {
    LoyaltyError::Storage("the session table was poisoned".to_string())
}

/// 32 random bytes, hex.
pub fn random_token() -> Result<String, LoyaltyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| LoyaltyError::Storage(format!("no random numbers: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An argon2id hash (PHC string) of the password, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, LoyaltyError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| LoyaltyError::Storage(format!("no random numbers: {e}")))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| LoyaltyError::Storage(format!("cannot make a salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| LoyaltyError::Storage(format!("cannot hash the password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn logins_lock_after_repeated_failures() {
        let sessions = Sessions::default();
        for _ in 0..MAX_FAILURES - 1 {
            sessions.failed("anna");
        }
        assert!(!sessions.locked("anna"));
        sessions.failed("anna");
        assert!(sessions.locked("anna"));
        assert!(!sessions.locked("boris"));
        sessions.succeeded("anna");
        assert!(!sessions.locked("anna"));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=1; lt_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, "lt_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
