//! The till's cache of guest cards it identified recently, for identifying a guest again while
//! the loyalty server is away, and the programme rules it last saw, for the offline quote.
//!
//! Only what the cashier is shown is kept, and less of it: the first name and the initial of the
//! last name, the masked phone, balances and the group (no stamps, no promotions, no card number).
//! Nothing is in clear on disk: identifiers are stored as keyed hashes only, and cards are sealed
//! (HMAC-SHA256 in counter mode, then an HMAC-SHA256 tag over nonce and ciphertext) with keys
//! derived from the till's server token, which lives in `config.toml` and never in the data
//! folder or a support export. A card older than the owner's age limit is dropped.

use crate::domain::{GroupInfo, GuestCard, GuestId, LoyaltyError, ScanEvent, ScanKind, UnixSeconds};
use crate::money::Kopecks;
use crate::scan::payload::{HmacSha256, keyed_mac};
use hmac::Mac;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS guest_cache (
    -- A keyed hash of an identifier ('id:'), or of a guest id ('guest:').
    key     BLOB    PRIMARY KEY,
    seen_at INTEGER NOT NULL,
    sealed  BLOB    NOT NULL
);
";

const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;

/// The programme rules an offline quote needs, as the server last stated them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRules {
    pub max_check_bp: i64,
    pub spend_step: Kopecks,
}

/// What is kept of a guest card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CachedCard {
    guest_id: GuestId,
    name: String,
    phone_masked: String,
    balance: Kopecks,
    available: Kopecks,
    group: GroupInfo,
    /// A further account's name (absent in entries cached before accounts, and for a main one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
}

pub struct GuestCache {
    conn: Connection,
    keys: Keys,
    max_age_secs: i64,
}

struct Keys {
    lookup: Vec<u8>,
    seal: Vec<u8>,
    tag: Vec<u8>,
}

impl Keys {
    fn derive(secret: &str) -> Keys {
        let master = prf(secret.as_bytes(), b"loyalty-till guest cache v1");
        Keys {
            lookup: prf(&master, b"lookup"),
            seal: prf(&master, b"seal"),
            tag: prf(&master, b"tag"),
        }
    }
}

fn prf(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac: HmacSha256 = keyed_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl GuestCache {
    /// Opens the cache in `path` (the journal's file); `secret` is the till's server token.
    /// A `max_age_days` of 0 keeps nothing.
    pub fn open(path: &Path, secret: &str, max_age_days: i64) -> Result<GuestCache, LoyaltyError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(GuestCache {
            conn,
            keys: Keys::derive(secret),
            max_age_secs: max_age_days.max(0) * 86_400,
        })
    }

    pub fn enabled(&self) -> bool {
        self.max_age_secs > 0
    }

    /// Keeps a card the server just gave, under the identifier it was found by (if any).
    pub fn remember(&self, card: &GuestCard, scan: Option<&ScanEvent>, now: UnixSeconds) -> Result<(), LoyaltyError> {
        if !self.enabled() {
            return Ok(());
        }
        let cached = CachedCard {
            guest_id: card.guest_id,
            name: short_name(&card.name),
            phone_masked: card.phone_masked.clone(),
            balance: card.balance,
            available: card.available,
            group: card.group.clone(),
            account: card.account.clone(),
        };
        let text = serde_json::to_vec(&cached).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
        self.put(&self.guest_key(card.guest_id), &text, now)?;
        if let Some(scan) = scan {
            self.put(&self.scan_key(scan), &card.guest_id.to_le_bytes(), now)?;
        }
        self.forget_old(now)
    }

    /// The card of a guest identified by `scan` within the age limit.
    pub fn find(&self, scan: &ScanEvent, now: UnixSeconds) -> Result<Option<GuestCard>, LoyaltyError> {
        let Some(id) = self.get(&self.scan_key(scan), now)? else {
            return Ok(None);
        };
        let Ok(bytes) = <[u8; 8]>::try_from(id.as_slice()) else {
            return Ok(None);
        };
        self.card(i64::from_le_bytes(bytes), now)
    }

    /// The last card of `guest` within the age limit.
    pub fn card(&self, guest: GuestId, now: UnixSeconds) -> Result<Option<GuestCard>, LoyaltyError> {
        let Some(text) = self.get(&self.guest_key(guest), now)? else {
            return Ok(None);
        };
        let Ok(card) = serde_json::from_slice::<CachedCard>(&text) else {
            return Ok(None);
        };
        Ok(Some(GuestCard {
            guest_id: card.guest_id,
            name: card.name,
            phone_masked: card.phone_masked,
            balance: card.balance,
            available: card.available,
            group: card.group,
            stamps: Vec::new(),
            promotions: Vec::new(),
            daily_visits: None,
            account: card.account,
        }))
    }

    /// Keeps the programme's spending rules (one record, no age limit: the rules change rarely).
    pub fn remember_rules(&self, rules: SpendRules, now: UnixSeconds) -> Result<(), LoyaltyError> {
        let text = serde_json::to_vec(&rules).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
        self.put(&self.rules_key(), &text, now)
    }

    pub fn rules(&self) -> Result<Option<SpendRules>, LoyaltyError> {
        let Some(text) = self.get(&self.rules_key(), UnixSeconds::MAX / 2)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&text).ok())
    }

    /// Drops cards older than the age limit.
    pub fn forget_old(&self, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "DELETE FROM guest_cache WHERE seen_at < ?1 AND key <> ?2",
            params![now - self.max_age_secs, self.rules_key()],
        )?;
        Ok(())
    }

    fn guest_key(&self, guest: GuestId) -> Vec<u8> {
        prf(&self.keys.lookup, format!("guest:{guest}").as_bytes())
    }

    fn rules_key(&self) -> Vec<u8> {
        prf(&self.keys.lookup, b"rules")
    }

    /// A phone in any usual spelling finds the same guest; other codes as they were read.
    fn scan_key(&self, scan: &ScanEvent) -> Vec<u8> {
        let payload = scan.payload.trim();
        let text = match crate::loyalty::rules::normalize_phone(payload) {
            Some(phone) if scan.kind == ScanKind::Manual => format!("id:phone:{phone}"),
            _ => format!("id:{:?}:{payload}", scan.kind),
        };
        prf(&self.keys.lookup, text.as_bytes())
    }

    fn put(&self, key: &[u8], plain: &[u8], now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "INSERT INTO guest_cache (key, seen_at, sealed) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at, sealed = excluded.sealed",
            params![key, now, self.seal(plain)?],
        )?;
        Ok(())
    }

    fn get(&self, key: &[u8], now: UnixSeconds) -> Result<Option<Vec<u8>>, LoyaltyError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM guest_cache WHERE key = ?1 AND seen_at >= ?2",
                params![key, now.saturating_sub(self.max_age_secs)],
                |row| row.get(0),
            )
            .optional()?;
        Ok(sealed.and_then(|s| self.unseal(&s)))
    }

    fn keystream_xor(&self, nonce: &[u8], data: &mut [u8]) {
        for (block, chunk) in data.chunks_mut(32).enumerate() {
            let mut mac: HmacSha256 = keyed_mac(&self.keys.seal);
            mac.update(nonce);
            mac.update(&(block as u64).to_be_bytes());
            let stream = mac.finalize().into_bytes();
            for (byte, key) in chunk.iter_mut().zip(stream.iter()) {
                *byte ^= key;
            }
        }
    }

    fn tag(&self, nonce: &[u8], cipher: &[u8]) -> HmacSha256 {
        let mut mac: HmacSha256 = keyed_mac(&self.keys.tag);
        mac.update(nonce);
        mac.update(cipher);
        mac
    }

    fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, LoyaltyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| LoyaltyError::Storage(format!("no randomness: {e}")))?;
        let mut out = nonce.to_vec();
        let mut cipher = plain.to_vec();
        self.keystream_xor(&nonce, &mut cipher);
        let tag = self.tag(&nonce, &cipher).finalize().into_bytes();
        out.extend_from_slice(&cipher);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// None for a record sealed with another token or changed on disk.
    fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (cipher, tag) = rest.split_at(rest.len() - TAG_LEN);
        self.tag(nonce, cipher).verify_slice(tag).ok()?;
        let mut plain = cipher.to_vec();
        self.keystream_xor(nonce, &mut plain);
        Some(plain)
    }
}

/// «Анна Смирнова» → «Анна С.»: enough for the cashier to greet the guest.
fn short_name(name: &str) -> String {
    let mut words = name.split_whitespace();
    let first = words.next().unwrap_or_default().to_string();
    match words.next().and_then(|w| w.chars().next()) {
        Some(initial) => format!("{first} {initial}."),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> GuestCard {
        GuestCard {
            guest_id: 7,
            name: "Анна Смирнова".to_string(),
            phone_masked: "+7 *** ***-45-67".to_string(),
            balance: Kopecks(35_000),
            available: Kopecks(30_000),
            group: GroupInfo {
                id: 1,
                name: "Гость".to_string(),
                discount_bp: 0,
                accrual_bp: 500,
            },
            stamps: Vec::new(),
            promotions: Vec::new(),
            daily_visits: None,
            account: None,
        }
    }

    fn scan(kind: ScanKind, payload: &str) -> ScanEvent {
        ScanEvent {
            source: "test".to_string(),
            kind,
            payload: payload.to_string(),
            symbology: None,
            received_at_ms: 0,
        }
    }

    #[test]
    fn a_recent_guest_is_found_again_masked_and_nothing_is_in_clear_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let cache = GuestCache::open(&path, "lt_secret", 30).unwrap();
        cache
            .remember(&card(), Some(&scan(ScanKind::Manual, "+7 916 123-45-67")), 1_000)
            .unwrap();
        cache
            .remember(&card(), Some(&scan(ScanKind::Barcode, "2000000000015")), 1_000)
            .unwrap();
        let found = cache
            .find(&scan(ScanKind::Manual, "8 (916) 123-45-67"), 2_000)
            .unwrap()
            .unwrap();
        assert_eq!(found.name, "Анна С.");
        assert_eq!(found.available, Kopecks(30_000));
        assert!(
            cache
                .find(&scan(ScanKind::Barcode, "2000000000015"), 2_000)
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .find(&scan(ScanKind::Barcode, "2000000000022"), 2_000)
                .unwrap()
                .is_none()
        );
        // Another token cannot read it; past the age limit it is gone.
        let other = GuestCache::open(&path, "lt_other", 30).unwrap();
        assert!(
            other
                .find(&scan(ScanKind::Barcode, "2000000000015"), 2_000)
                .unwrap()
                .is_none()
        );
        assert!(
            cache
                .find(&scan(ScanKind::Barcode, "2000000000015"), 1_000 + 31 * 86_400)
                .unwrap()
                .is_none()
        );
        // Beside the journal, whose connection keeps the file in WAL mode.
        let journal = crate::remote::journal::Journal::open(&path).unwrap();
        cache
            .remember(&card(), Some(&scan(ScanKind::Barcode, "2000000000015")), 1_500)
            .unwrap();
        drop((cache, other, journal));
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for clear in ["Анна", "Смирнова", "2000000000015", "9161234567", "45-67", "Гость"] {
                assert!(!text.contains(clear), "{clear} is in clear on disk");
            }
        }
    }

    /// A further account is told apart offline too: its name is kept with the card.
    #[test]
    fn an_accounts_name_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = GuestCache::open(&dir.path().join("j.sqlite"), "lt", 30).unwrap();
        let corporate = GuestCard {
            guest_id: 9,
            account: Some("Корпоративный".to_string()),
            ..card()
        };
        let code = scan(ScanKind::Barcode, "700001");
        cache.remember(&corporate, Some(&code), 1_000).unwrap();
        let found = cache.find(&code, 1_500).unwrap().unwrap();
        assert_eq!((found.guest_id, found.account.as_deref()), (9, Some("Корпоративный")));
    }

    #[test]
    fn an_age_limit_of_zero_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = GuestCache::open(&dir.path().join("j.sqlite"), "lt", 0).unwrap();
        cache
            .remember(&card(), Some(&scan(ScanKind::Barcode, "2000000000015")), 1_000)
            .unwrap();
        assert!(
            cache
                .find(&scan(ScanKind::Barcode, "2000000000015"), 1_000)
                .unwrap()
                .is_none()
        );
    }
}
