//! Which guest and which gifts the waiters' handhelds put on each order, in a SQLite file of its
//! own beside the ledger, so a restart of the till keeps them.
//!
//! A file of its own rather than tables in the ledger: this is no money and no rule, only what
//! iikoWaiter asked for, and the ledger's schema versions (and their migration tests) stay the
//! ledger's. The decisions about guests and gifts are the engine's (`identify`); this book only
//! keeps an order to one guest and a gift to one order.

use crate::domain::{Gift, GuestId, Identification, LoyaltyError, UnixSeconds};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;

/// How long a check-in or a gift stays on an order nobody closed: a restaurant's orders last
/// hours, and a gift left on a forgotten order must become usable again on another one.
pub const ORDER_TTL_SECS: i64 = 24 * 3_600;

/// 2: a gift on an order keeps the POS item code of the catalogue's gift.
const SCHEMA_VERSION: i64 = 2;

/// What is on one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderState {
    /// The guest checked in now; `None` after a check-out.
    pub guest: Option<(GuestId, String)>,
    /// Every gift added by a check-in, in the order they came; a check-out keeps them, because
    /// the dishes stay in the order.
    pub gifts: Vec<(GuestId, Gift)>,
}

/// Why a check-in leaves the order as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckinRefusal {
    /// Another guest is checked in: check them out first.
    OtherGuest,
    /// The order already carries another guest's gifts.
    OtherGuestsGifts,
    /// The gift is on another order already.
    GiftOnOtherOrder,
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("{0:?}")]
    Refused(CheckinRefusal),
    #[error("order book: {0}")]
    Storage(#[from] rusqlite::Error),
}

impl From<BookError> for LoyaltyError {
    fn from(error: BookError) -> LoyaltyError {
        LoyaltyError::Storage(error.to_string())
    }
}

pub struct OrderBook {
    conn: Connection,
}

impl OrderBook {
    pub fn open(path: &Path) -> Result<OrderBook, rusqlite::Error> {
        let conn = Connection::open(path)?;
        // WAL: a reader (a test, a support export) never blocks a check-in.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS checkin (
                 order_id TEXT PRIMARY KEY,
                 guest_id INTEGER NOT NULL,
                 guest_name TEXT NOT NULL,
                 at INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS order_gift (
                 gift_code TEXT PRIMARY KEY,
                 order_id TEXT NOT NULL,
                 guest_id INTEGER NOT NULL,
                 name TEXT NOT NULL,
                 points INTEGER NOT NULL,
                 at INTEGER NOT NULL,
                 pos_code TEXT
             );
             CREATE INDEX IF NOT EXISTS order_gift_by_order ON order_gift(order_id, at);",
        )?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        // A book of version 1 was made without the POS item code: the column is added, its gifts
        // have none (as before, the configured codes name them).
        if version == 1 {
            conn.execute_batch("ALTER TABLE order_gift ADD COLUMN pos_code TEXT")?;
        }
        if version < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(OrderBook { conn })
    }

    /// Puts the identified guest (and the gift of a gift code) on the order, or says why not.
    /// One immediate transaction: two handhelds checking in on one order at once are applied
    /// one after the other, never mixed.
    pub fn check_in(&mut self, order: &str, found: &Identification, now: UnixSeconds) -> Result<(), BookError> {
        let guest = found.card.guest_id;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        forget_old(&tx, now)?;
        let current: Option<GuestId> = tx
            .query_row("SELECT guest_id FROM checkin WHERE order_id = ?1", [order], |r| {
                r.get(0)
            })
            .optional()?;
        if current.is_some_and(|g| g != guest) {
            return Err(BookError::Refused(CheckinRefusal::OtherGuest));
        }
        let foreign_gift: Option<GuestId> = tx
            .query_row(
                "SELECT guest_id FROM order_gift WHERE order_id = ?1 AND guest_id <> ?2 LIMIT 1",
                params![order, guest],
                |r| r.get(0),
            )
            .optional()?;
        if foreign_gift.is_some() {
            return Err(BookError::Refused(CheckinRefusal::OtherGuestsGifts));
        }
        if let Some(gift) = &found.gift {
            let on: Option<String> = tx
                .query_row(
                    "SELECT order_id FROM order_gift WHERE gift_code = ?1",
                    [&gift.code],
                    |r| r.get(0),
                )
                .optional()?;
            match on {
                Some(other) if other != order => return Err(BookError::Refused(CheckinRefusal::GiftOnOtherOrder)),
                // The same gift scanned again on the same order: it is there once.
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO order_gift (gift_code, order_id, guest_id, name, points, at, pos_code)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![gift.code, order, guest, gift.name, gift.points.0, now, gift.pos_code],
                    )?;
                }
            }
        }
        if current.is_none() {
            tx.execute(
                "INSERT INTO checkin (order_id, guest_id, guest_name, at) VALUES (?1, ?2, ?3, ?4)",
                params![order, guest, found.card.name, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes the guest off the order; the gifts stay. Returns whether a guest was checked in.
    pub fn check_out(&mut self, order: &str, now: UnixSeconds) -> Result<bool, BookError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        forget_old(&tx, now)?;
        let removed = tx.execute("DELETE FROM checkin WHERE order_id = ?1", [order])?;
        tx.commit()?;
        Ok(removed > 0)
    }

    /// What is on the order; `None` if nothing ever was (or it was forgotten).
    pub fn order(&self, order: &str) -> Result<Option<OrderState>, BookError> {
        let guest: Option<(GuestId, String)> = self
            .conn
            .query_row(
                "SELECT guest_id, guest_name FROM checkin WHERE order_id = ?1",
                [order],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut statement = self.conn.prepare_cached(
            "SELECT guest_id, gift_code, name, points, pos_code FROM order_gift WHERE order_id = ?1 ORDER BY at, rowid",
        )?;
        let gifts = statement
            .query_map([order], |r| {
                Ok((
                    r.get::<_, GuestId>(0)?,
                    Gift {
                        code: r.get(1)?,
                        name: r.get(2)?,
                        points: crate::money::Kopecks(r.get(3)?),
                        pos_code: r.get(4)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if guest.is_none() && gifts.is_empty() {
            return Ok(None);
        }
        Ok(Some(OrderState { guest, gifts }))
    }
}

/// Drops what stayed on orders longer than [`ORDER_TTL_SECS`].
fn forget_old(tx: &rusqlite::Transaction<'_>, now: UnixSeconds) -> Result<(), rusqlite::Error> {
    let before = now - ORDER_TTL_SECS;
    tx.execute("DELETE FROM checkin WHERE at < ?1", [before])?;
    tx.execute("DELETE FROM order_gift WHERE at < ?1", [before])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{GroupInfo, GuestCard};
    use crate::money::Kopecks;

    fn found(guest: GuestId, gift: Option<&str>) -> Identification {
        Identification {
            card: GuestCard {
                guest_id: guest,
                name: format!("Гость {guest}"),
                phone_masked: String::new(),
                balance: Kopecks(0),
                available: Kopecks(0),
                group: GroupInfo {
                    id: 1,
                    name: String::new(),
                    discount_bp: 0,
                    accrual_bp: 0,
                },
                stamps: Vec::new(),
                promotions: Vec::new(),
                daily_visits: None,
                account: None,
            },
            gift: gift.map(|code| Gift {
                code: code.to_string(),
                name: format!("Подарок {code}"),
                points: Kopecks(100),
                pos_code: Some(format!("POS-{code}")),
            }),
        }
    }

    #[test]
    fn one_guest_per_order_gifts_kept_across_check_out_and_forgotten_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.sqlite");
        let mut book = OrderBook::open(&path).unwrap();
        book.check_in("a", &found(1, Some("G1")), 100).unwrap();
        assert!(matches!(
            book.check_in("a", &found(2, None), 101),
            Err(BookError::Refused(CheckinRefusal::OtherGuest))
        ));
        assert!(book.check_out("a", 102).unwrap());
        assert!(!book.check_out("a", 103).unwrap());
        // Another guest after the check-out: the first guest's gift is still on the order.
        assert!(matches!(
            book.check_in("a", &found(2, None), 104),
            Err(BookError::Refused(CheckinRefusal::OtherGuestsGifts))
        ));
        assert!(matches!(
            book.check_in("b", &found(1, Some("G1")), 105),
            Err(BookError::Refused(CheckinRefusal::GiftOnOtherOrder))
        ));
        book.check_in("a", &found(1, Some("G2")), 106).unwrap();
        book.check_in("a", &found(1, Some("G2")), 107).unwrap();
        drop(book);
        let mut book = OrderBook::open(&path).unwrap();
        let state = book.order("a").unwrap().unwrap();
        assert_eq!(state.guest, Some((1, "Гость 1".to_string())));
        let codes: Vec<_> = state.gifts.iter().map(|(_, g)| g.code.as_str()).collect();
        assert_eq!(codes, ["G1", "G2"]);
        assert_eq!(
            state.gifts[0].1.pos_code.as_deref(),
            Some("POS-G1"),
            "the POS item code is kept"
        );
        // A day later the forgotten order frees its gifts.
        book.check_in("b", &found(1, Some("G1")), 106 + ORDER_TTL_SECS + 1)
            .unwrap();
        assert_eq!(book.order("a").unwrap(), None);
    }

    #[test]
    fn a_book_made_before_pos_codes_opens_with_its_gifts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE order_gift (gift_code TEXT PRIMARY KEY, order_id TEXT NOT NULL, guest_id INTEGER NOT NULL,
                                      name TEXT NOT NULL, points INTEGER NOT NULL, at INTEGER NOT NULL);
             INSERT INTO order_gift VALUES ('G9', 'a', 1, 'Кофе', 100, 100);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(old);
        let mut book = OrderBook::open(&path).unwrap();
        let state = book.order("a").unwrap().unwrap();
        assert_eq!(state.gifts[0].1.code, "G9");
        assert_eq!(state.gifts[0].1.pos_code, None);
        book.check_in("a", &found(1, Some("G3")), 101).unwrap();
        let state = book.order("a").unwrap().unwrap();
        assert_eq!(state.gifts[1].1.pos_code.as_deref(), Some("POS-G3"));
    }
}
