//! The rows both stores read for the engine, decoded once: a store only says how to read an
//! integer, a text and a flag from its own row type ([`Columns`]).

use super::rewards::PromotionDef;
use super::rules::{AccrualBasis, Group, GuestSnapshot, NewGroup, ProgramSettings};
use crate::domain::CheckSummary;
use crate::money::Kopecks;

/// A row's columns by index, as a store's driver reads them.
pub trait Columns {
    type Error;
    fn int(&self, index: usize) -> Result<i64, Self::Error>;
    fn text(&self, index: usize) -> Result<String, Self::Error>;
    fn flag(&self, index: usize) -> Result<bool, Self::Error>;
    /// A text column that may be NULL.
    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error>;
}

/// The columns [`group_at`] reads, from `guest_groups gg`.
pub const GROUP_COLUMNS: &str = "gg.id, gg.name, gg.rank, gg.discount_bp, gg.accrual_bp, gg.spend_threshold,
    gg.never_downgrade, gg.daily_ops_limit, gg.daily_spend_limit";

/// The columns [`program_at`] reads, from `program` or `programs`.
pub const PROGRAM_COLUMNS: &str =
    "name, max_check_bp, spend_step, hold_ttl_secs, group_period_days, utc_offset_minutes, accrual_basis,
     welcome_bonus, till_enrolment";

/// The columns [`snapshot_at`] reads before the group's: the guest's four, the programme's nine,
/// then whether the guest is blocked.
pub const SNAPSHOT_COLUMNS: &str = "g.id, g.org, g.balance, g.balance - {held},
    p.name, p.max_check_bp, p.spend_step, p.hold_ttl_secs, p.group_period_days, p.utc_offset_minutes,
    p.accrual_basis, p.welcome_bonus, p.till_enrolment, g.blocked";

/// Opens another bonus account of the guest `$1` (or of the guest whose account `$1` is), named
/// `$2`, at `$3`: a row of its own with the person's name, group and block, no phone (the phone
/// finds the main account) and no balance. Inserts nothing when the guest is unknown or already
/// has an account of that name. Both stores bind the numbered parameters in this order.
pub const ACCOUNT_INSERT_SQL: &str = "WITH main AS (
        SELECT m.id, m.org, m.name, m.group_id, m.blocked
        FROM guests g JOIN guests m ON m.id = COALESCE(g.account_of, g.id) WHERE g.id = $1)
    INSERT INTO guests (account_of, account_name, created_at, org, name, group_id, blocked)
    SELECT main.id, $2, $3, main.org, main.name, main.group_id, main.blocked FROM main
    WHERE NOT EXISTS (SELECT 1 FROM guests a WHERE a.account_of = main.id AND a.account_name = $2)";

/// The guest's part of a card (a `WHERE` on `g.id` follows): name, phone, balance, available (with
/// `{held}` replaced by the store's open holds) and the account's name. An account shows its
/// person's name and phone.
pub const CARD_GUEST_SQL: &str = "SELECT COALESCE(m.name, g.name), COALESCE(g.phone, m.phone), g.balance,
        g.balance - {held}, g.account_name
    FROM guests g LEFT JOIN guests m ON m.id = g.account_of";

/// The group whose columns start at `at`.
pub fn group_at<C: Columns>(row: &C, at: usize) -> Result<Group, C::Error> {
    Ok(Group {
        id: row.int(at)?,
        rules: NewGroup {
            name: row.text(at + 1)?,
            rank: row.int(at + 2)?,
            discount_bp: row.int(at + 3)?,
            accrual_bp: row.int(at + 4)?,
            spend_threshold: Kopecks(row.int(at + 5)?),
            never_downgrade: row.flag(at + 6)?,
            daily_ops_limit: row.int(at + 7)?,
            daily_spend_limit: Kopecks(row.int(at + 8)?),
        },
    })
}

/// The programme whose columns ([`PROGRAM_COLUMNS`]) start at `at`. The schema allows only the
/// bases this build knows.
pub fn program_at<C: Columns>(row: &C, at: usize) -> Result<ProgramSettings, C::Error> {
    Ok(ProgramSettings {
        name: row.text(at)?,
        max_check_bp: row.int(at + 1)?,
        spend_step: Kopecks(row.int(at + 2)?),
        hold_ttl_secs: row.int(at + 3)?,
        group_period_days: row.int(at + 4)?,
        utc_offset_minutes: row.int(at + 5)?,
        accrual_basis: AccrualBasis::parse(&row.text(at + 6)?).unwrap_or_default(),
        welcome_bonus: Kopecks(row.int(at + 7)?),
        till_enrolment: row.flag(at + 8)?,
    })
}

/// A guest's snapshot: [`SNAPSHOT_COLUMNS`], then [`GROUP_COLUMNS`].
pub fn snapshot_at<C: Columns>(row: &C) -> Result<GuestSnapshot, C::Error> {
    Ok(GuestSnapshot {
        guest: row.int(0)?,
        org: row.text(1)?,
        balance: Kopecks(row.int(2)?),
        available: Kopecks(row.int(3)?),
        program: program_at(row, 4)?,
        blocked: row.flag(13)?,
        group: group_at(row, 14)?,
    })
}

/// The closed checks the returns screen lists (`LedgerTx::paid_checks`), in PostgreSQL's
/// placeholders (SQLite's store reads `$` as `?`): `$1` the organisation or NULL, `$2` paid
/// since, `$3` the check's number or NULL, `$4` the guest or NULL, `$5` an operation-id prefix
/// or NULL, `$6` how many.
pub const PAID_CHECKS_SQL: &str = "SELECT p.id, p.op_id, p.guest_id, g.name, p.at, p.amount_due, p.spent, p.accrued,
        CAST((SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id) AS BIGINT), p.lines
    FROM payments p JOIN guests g ON g.id = p.guest_id
    WHERE (CAST($1 AS TEXT) IS NULL OR g.org = $1)
      AND p.at >= $2
      AND (CAST($3 AS BIGINT) IS NULL OR p.id = $3)
      AND (CAST($4 AS BIGINT) IS NULL OR p.guest_id = $4)
      AND (CAST($5 AS TEXT) IS NULL OR substr(p.op_id, 1, length($5)) = $5)
      AND p.owner_payment_id IS NULL
    ORDER BY p.id DESC
    LIMIT $6";

/// A row of [`PAID_CHECKS_SQL`]: the check without its lines, and the lines' JSON as the store
/// keeps it ([`super::rules::parse_lines`] reads it, failing as the ledger's own error).
pub fn check_summary_at<C: Columns>(row: &C) -> Result<(CheckSummary, Option<String>), C::Error> {
    Ok((
        CheckSummary {
            number: row.int(0)?,
            op_id: row.text(1)?,
            guest: row.int(2)?,
            guest_name: row.text(3)?,
            at: row.int(4)?,
            amount_due: Kopecks(row.int(5)?),
            spent: Kopecks(row.int(6)?),
            accrued: Kopecks(row.int(7)?),
            refunded: Kopecks(row.int(8)?),
            lines: Vec::new(),
        },
        row.opt_text(9)?,
    ))
}

/// The statement both stores (and the till's own ledger) log a manual change with: org, at,
/// actor, action, guest id, detail, reason, op key. A repeat of an operation id (a form posted
/// twice) is logged once.
pub const AUDIT_INSERT: &str = "INSERT INTO audit_log (org, at, actor, action, guest_id, detail, reason, op_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (op_key) DO NOTHING";

/// The stamp cards a guest (`$1`) collects on: the organisation's and those made before cards
/// had one (no organisation), with the guest's count, by id. Both stores read these columns.
pub const GUEST_STAMP_CARDS_SQL: &str =
    "SELECT c.id, CAST(COALESCE(s.collected, 0) AS BIGINT), c.needed, c.name, c.reward
    FROM guests g JOIN stamp_cards c ON c.org IS NULL OR c.org = g.org
    LEFT JOIN stamps s ON s.card_id = c.id AND s.guest_id = g.id
    WHERE g.id = $1 ORDER BY c.id";

/// Every promotion a guest (`$1`) may see, with the programme's UTC offset: which of them run
/// now is the rules' call (`rewards::current_promotions`), not the query's.
pub const GUEST_PROMOTIONS_SQL: &str = "SELECT pr.name, pr.description, pr.starts_at, pr.ends_at, pr.weekdays,
        pr.day_start_min, pr.day_end_min, CAST(COALESCE(p.utc_offset_minutes, 0) AS BIGINT)
    FROM guests g JOIN promotions pr ON pr.org IS NULL OR pr.org = g.org
    LEFT JOIN programs p ON p.org = g.org
    WHERE g.id = $1 ORDER BY pr.id";

/// A row of [`GUEST_PROMOTIONS_SQL`]: the promotion and its programme's UTC offset.
pub fn promotion_at<C: Columns>(row: &C) -> Result<(PromotionDef, i64), C::Error> {
    Ok((
        PromotionDef {
            name: row.text(0)?,
            description: row.text(1)?,
            starts_at: row.int(2)?,
            ends_at: row.int(3)?,
            weekdays: row.int(4)?,
            day_start_min: row.int(5)?,
            day_end_min: row.int(6)?,
        },
        row.int(7)?,
    ))
}

/// The columns of a gift of the catalogue, from `gifts`: id, name, POS item code, points, active.
pub const GIFT_COLUMNS: &str = "id, name, pos_code, points, active";

/// A row of [`GIFT_COLUMNS`].
pub fn gift_at<C: Columns>(row: &C) -> Result<(i64, super::rewards::GiftDef), C::Error> {
    Ok((
        row.int(0)?,
        super::rewards::GiftDef {
            name: row.text(1)?,
            pos_code: row.text(2)?,
            points: Kopecks(row.int(3)?),
            active: row.flag(4)?,
        },
    ))
}

/// A column value or a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    Text(String),
    Null,
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(v) => *v,
            _ => 0,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Val::Text(v) => v.clone(),
            Val::Int(v) => v.to_string(),
            Val::Null => String::new(),
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Val::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            other => Some(other.text()),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

pub type Rows = Vec<Vec<Val>>;
