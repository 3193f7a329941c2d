//! The loyalty programme, written once: [`rules`] decides every operation from a snapshot,
//! [`engine`] loads the snapshot through a store transaction, asks the rules and has the store
//! apply the answer. The SQLite ledger (`crate::ledger`) and the PostgreSQL store
//! (`crate::server::pg`) only read and write rows. [`migrate`] brings either database's schema
//! up to date by one list of versions; [`INVARIANT_QUERIES`] prove either consistent.

pub mod audit;
pub mod demo;
pub mod engine;
pub mod import;
pub mod migrate;
pub mod report;
pub mod rewards;
pub mod rows;
pub mod rules;
pub mod spend_days;

/// The ledger's invariants: each query returns one text row per violation, in SQL that SQLite
/// and PostgreSQL both read, so both stores prove the same things.
pub const INVARIANT_QUERIES: [(&str, &str); 18] = [
    (
        "payment on a hold that is not committed",
        "SELECT 'payment ' || p.id FROM payments p JOIN holds h ON h.id = p.hold_id
         WHERE h.status <> 'committed' OR h.committed_amount <> p.spent",
    ),
    (
        "void recorded for a committed hold",
        "SELECT 'hold ' || h.id FROM hold_voids v JOIN holds h ON h.id = v.hold_id WHERE h.status = 'committed'",
    ),
    (
        "committed hold without its payment",
        "SELECT 'hold ' || h.id FROM holds h WHERE h.status = 'committed'
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.hold_id = h.id)",
    ),
    (
        "refunds exceed the check",
        "SELECT 'payment ' || p.id FROM payments p
         WHERE p.amount_due < (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id)",
    ),
    (
        "balance differs from the sum of operations",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance <> COALESCE((SELECT SUM(o.amount) FROM operations o WHERE o.guest_id = g.id), 0)",
    ),
    (
        "an account of an account, or of another organisation's guest",
        "SELECT 'guest ' || g.id FROM guests g JOIN guests m ON m.id = g.account_of
         WHERE m.account_of IS NOT NULL OR m.org <> g.org OR g.phone IS NOT NULL",
    ),
    (
        "negative balance",
        "SELECT 'guest ' || id FROM guests WHERE balance < 0",
    ),
    (
        "open holds exceed the balance",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance < COALESCE((SELECT SUM(h.amount) FROM holds h
                                     WHERE h.guest_id = g.id AND h.status = 'open'), 0)",
    ),
    (
        "hold with an unknown status",
        "SELECT 'hold ' || id FROM holds WHERE status NOT IN ('open', 'committed', 'voided', 'expired')",
    ),
    (
        "committed amount wrong",
        "SELECT 'hold ' || id FROM holds
         WHERE (status = 'committed') <> (committed_amount IS NOT NULL)
            OR committed_amount < 0 OR committed_amount > amount",
    ),
    (
        "hold op_id reused",
        "SELECT op_id FROM holds GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "payment op_id reused",
        "SELECT op_id FROM payments GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "manual operation op_id reused",
        "SELECT op_id FROM operations WHERE op_id IS NOT NULL GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "spend without a payment",
        "SELECT 'operation ' || o.id FROM operations o WHERE o.kind = 'spend'
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = o.payment_id AND -o.amount = p.spent)",
    ),
    (
        "share of a check out of step with its owner's payment",
        "SELECT 'payment ' || s.id FROM payments s JOIN payments o ON o.id = s.owner_payment_id
         WHERE s.accrued <> 0 OR o.owner_payment_id IS NOT NULL OR s.amount_due <> o.amount_due
            OR (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = s.id)
               <> (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = o.id)",
    ),
    (
        "report sums out of step with the payments and refunds",
        report::CHECK_SUMS_DIFFER_SQL,
    ),
    (
        "a guest's spending per day out of step with the payments and refunds",
        spend_days::DIFFER_SQL,
    ),
    (
        "write without its idempotency record",
        "SELECT 'hold ' || h.op_id FROM holds h WHERE NOT EXISTS (SELECT 1 FROM op_log l WHERE l.op_key = h.op_id)
         UNION ALL
         SELECT 'payment ' || p.op_id FROM payments p WHERE NOT EXISTS (SELECT 1 FROM op_log l WHERE l.op_key = p.op_id)
         UNION ALL
         SELECT 'refund ' || r.op_id FROM refunds r WHERE NOT EXISTS (SELECT 1 FROM op_log l WHERE l.op_key = r.op_id)",
    ),
];
