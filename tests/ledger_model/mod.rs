//! A model of the bonus programme's rules, for checking a ledger against: every figure it gives
//! (balances, what may be spent, accruals, which operation is refused and why) is computed here
//! from the rules, never read from the ledger under test. Only identifiers (guest and hold ids)
//! come from the ledger, because they name things and carry no money.
//!
//! The rules, as the programme states them:
//! - amounts are kopecks; the amount due is the check less the group's discount (rounded down);
//! - at most `max_check_bp` of the amount due may be paid with bonuses, in whole `spend_step`s,
//!   never more than the guest has available (balance less open holds), never more than the
//!   amount due, and, for a group with a daily spend limit, never more than the limit less what
//!   was paid with bonuses since the local midnight and what is held now;
//! - a hold reserves bonuses for `hold_ttl_secs`, then lapses (from that second on); a payment
//!   debits at most what its hold reserved and releases the rest; a lapsed, voided or paid hold
//!   cannot be paid again; voiding a lapsed or voided hold changes nothing, a paid one is refused;
//! - a payment accrues the group's `accrual_bp` (rounded down) on the part of the amount due not
//!   paid with bonuses;
//! - a hand debit takes at most what is available; a hand credit adds what it says.
#![allow(dead_code)] // Each test binary uses part of it.

use loyalty_till::domain::{GuestId, HoldId, LoyaltyError, UnixSeconds};
use loyalty_till::money::Kopecks;
use std::collections::BTreeMap;

/// The programme's settings the rules above depend on.
#[derive(Clone, Copy, Debug)]
pub struct Programme {
    pub max_check_bp: i64,
    pub spend_step: i64,
    pub hold_ttl_secs: i64,
    pub utc_offset_minutes: i64,
}

/// What a guest's group changes in the rules. Groups of one rank never move a guest between
/// them, so a programme whose groups all share a rank keeps every guest where they started.
#[derive(Clone, Copy, Debug)]
pub struct GroupRules {
    pub discount_bp: i64,
    pub accrual_bp: i64,
    /// 0: no daily limit.
    pub daily_spend_limit: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HoldState {
    Open,
    Committed,
    Voided,
    Expired,
}

impl HoldState {
    fn name(self) -> &'static str {
        match self {
            HoldState::Open => "open",
            HoldState::Committed => "committed",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Hold {
    guest: GuestId,
    amount: i64,
    expires_at: UnixSeconds,
    state: HoldState,
}

#[derive(Clone, Debug)]
struct Guest {
    rules: GroupRules,
    balance: i64,
    /// Bonus payments: when and how much.
    spends: Vec<(UnixSeconds, i64)>,
}

/// What the model says a payment gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payment {
    pub spent: Kopecks,
    pub accrued: Kopecks,
    pub balance_after: Kopecks,
}

/// What the model says a hold grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldTerms {
    pub amount: Kopecks,
    pub expires_at: UnixSeconds,
}

pub struct LedgerModel {
    programme: Programme,
    guests: BTreeMap<GuestId, Guest>,
    holds: BTreeMap<HoldId, Hold>,
}

/// `amount` × `bp` / 10 000, rounded down (amounts here are never negative).
fn percent_floor(amount: i64, bp: i64) -> i64 {
    amount * bp / 10_000
}

impl LedgerModel {
    pub fn new(programme: Programme) -> LedgerModel {
        LedgerModel {
            programme,
            guests: BTreeMap::new(),
            holds: BTreeMap::new(),
        }
    }

    /// A guest the ledger created with this id, with nothing on their account.
    pub fn add_guest(&mut self, guest: GuestId, rules: GroupRules) {
        let fresh = Guest {
            rules,
            balance: 0,
            spends: Vec::new(),
        };
        assert!(self.guests.insert(guest, fresh).is_none(), "guest {guest} added twice");
    }

    pub fn balance(&self, guest: GuestId) -> Kopecks {
        Kopecks(self.guests[&guest].balance)
    }

    /// Balance less the holds open at `now`.
    pub fn available(&self, guest: GuestId, now: UnixSeconds) -> Kopecks {
        Kopecks(self.guests[&guest].balance - self.held(guest, now))
    }

    /// The most `guest` may pay with bonuses on a check of `subtotal` at `now`.
    pub fn max_spend(&self, guest: GuestId, subtotal: Kopecks, now: UnixSeconds) -> Kopecks {
        let g = &self.guests[&guest];
        let due = self.amount_due(guest, subtotal.0);
        let mut max = due
            .min(self.available(guest, now).0)
            .min(percent_floor(due, self.programme.max_check_bp));
        if g.rules.daily_spend_limit > 0 {
            let midnight = self.local_midnight(now);
            let paid_today: i64 = g.spends.iter().filter(|(at, _)| *at >= midnight).map(|(_, a)| a).sum();
            max = max.min(g.rules.daily_spend_limit - paid_today - self.held(guest, now));
        }
        let step = self.programme.spend_step;
        Kopecks((max - max.rem_euclid(step)).max(0))
    }

    /// A hold the ledger should grant, or the refusal it should give. Nothing is placed: after
    /// the ledger grants it, [`LedgerModel::placed`] records it under the ledger's id.
    pub fn hold(
        &mut self,
        guest: GuestId,
        amount: Kopecks,
        subtotal: Kopecks,
        now: UnixSeconds,
    ) -> Result<HoldTerms, LoyaltyError> {
        if amount.0 <= 0 {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        if amount.0 % self.programme.spend_step != 0 {
            return Err(LoyaltyError::NotAMultipleOfStep {
                step: Kopecks(self.programme.spend_step),
            });
        }
        self.lapse(now);
        let max = self.max_spend(guest, subtotal, now);
        if amount > max {
            return Err(LoyaltyError::OverMaximum { requested: amount, max });
        }
        Ok(HoldTerms {
            amount,
            expires_at: now + self.programme.hold_ttl_secs,
        })
    }

    /// The hold the ledger granted on the model's terms, under the ledger's id.
    pub fn placed(&mut self, id: HoldId, guest: GuestId, terms: HoldTerms) {
        let hold = Hold {
            guest,
            amount: terms.amount.0,
            expires_at: terms.expires_at,
            state: HoldState::Open,
        };
        assert!(self.holds.insert(id, hold).is_none(), "hold {id} placed twice");
    }

    /// A check paid: `spent` bonuses from `hold` (none: no bonuses), accrual on the rest.
    pub fn pay(
        &mut self,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        subtotal: Kopecks,
        now: UnixSeconds,
    ) -> Result<Payment, LoyaltyError> {
        // The model's checks carry no gift: one of 0,00 pays and redeems nothing, and is refused.
        if spent.0 < 0 || subtotal.0 <= 0 {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        if spent.0 % self.programme.spend_step != 0 {
            return Err(LoyaltyError::NotAMultipleOfStep {
                step: Kopecks(self.programme.spend_step),
            });
        }
        self.lapse(now);
        match hold {
            Some(id) => {
                let h = self.holds.get_mut(&id).ok_or(LoyaltyError::UnknownHold)?;
                if h.guest != guest {
                    return Err(LoyaltyError::UnknownHold);
                }
                if h.state != HoldState::Open {
                    return Err(LoyaltyError::HoldNotOpen {
                        status: h.state.name().to_string(),
                    });
                }
                if spent.0 > h.amount {
                    return Err(LoyaltyError::CommitOverHold {
                        requested: spent,
                        held: Kopecks(h.amount),
                    });
                }
                h.state = HoldState::Committed;
            }
            None if spent.0 > 0 => {
                return Err(LoyaltyError::OverMaximum {
                    requested: spent,
                    max: Kopecks::ZERO,
                });
            }
            None => {}
        }
        let due = self.amount_due(guest, subtotal.0);
        let g = self.guests.get_mut(&guest).unwrap();
        let accrued = percent_floor((due - spent.0).max(0), g.rules.accrual_bp);
        g.balance += accrued - spent.0;
        if spent.0 > 0 {
            g.spends.push((now, spent.0));
        }
        Ok(Payment {
            spent,
            accrued: Kopecks(accrued),
            balance_after: Kopecks(g.balance),
        })
    }

    /// Releases a hold: a lapsed or voided one stays as it is, a paid one is refused.
    pub fn void(&mut self, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.lapse(now);
        let h = self.holds.get_mut(&hold).ok_or(LoyaltyError::UnknownHold)?;
        match h.state {
            HoldState::Open => h.state = HoldState::Voided,
            HoldState::Voided | HoldState::Expired => {}
            HoldState::Committed => {
                return Err(LoyaltyError::HoldNotOpen {
                    status: "committed".to_string(),
                });
            }
        }
        Ok(())
    }

    /// Holds whose time is up at `now` lapse.
    pub fn lapse(&mut self, now: UnixSeconds) {
        for h in self.holds.values_mut() {
            if h.state == HoldState::Open && h.expires_at <= now {
                h.state = HoldState::Expired;
            }
        }
    }

    /// A hand credit; the balance after.
    pub fn credit(&mut self, guest: GuestId, amount: Kopecks) -> Result<Kopecks, LoyaltyError> {
        if amount.0 <= 0 {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        let g = self.guests.get_mut(&guest).unwrap();
        g.balance += amount.0;
        Ok(Kopecks(g.balance))
    }

    /// A hand debit of at most what is available; the balance after.
    pub fn debit(&mut self, guest: GuestId, amount: Kopecks, now: UnixSeconds) -> Result<Kopecks, LoyaltyError> {
        if amount.0 <= 0 {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        self.lapse(now);
        let max = self.available(guest, now);
        if amount > max {
            return Err(LoyaltyError::OverMaximum { requested: amount, max });
        }
        let g = self.guests.get_mut(&guest).unwrap();
        g.balance -= amount.0;
        Ok(Kopecks(g.balance))
    }

    fn amount_due(&self, guest: GuestId, subtotal: i64) -> i64 {
        subtotal - percent_floor(subtotal, self.guests[&guest].rules.discount_bp)
    }

    /// What the guest's open holds reserve at `now` (a hold lapses at its `expires_at`).
    fn held(&self, guest: GuestId, now: UnixSeconds) -> i64 {
        self.holds
            .values()
            .filter(|h| h.guest == guest && h.state == HoldState::Open && h.expires_at > now)
            .map(|h| h.amount)
            .sum()
    }

    /// The start of the local day `now` falls in.
    fn local_midnight(&self, now: UnixSeconds) -> UnixSeconds {
        let offset = self.programme.utc_offset_minutes * 60;
        (now + offset).div_euclid(86_400) * 86_400 - offset
    }
}
