-- Schema version 9: two index pages fewer for every balance change, which a payment's commit
-- writes twice. A manual change's operation id stays unique, through an index of the rows that
-- have one: a payment's postings carry none and no longer fill the index with NULLs. The
-- guest's operations by time (version 7's index, which the history pages read) also serve the
-- spending-by-kind sums, so the older (guest, kind, time) index goes.
CREATE TABLE operations_v9 (
    id            INTEGER PRIMARY KEY,
    guest_id      INTEGER NOT NULL REFERENCES guests (id),
    kind          TEXT    NOT NULL,
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    note          TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    op_id         TEXT,
    payment_id    INTEGER REFERENCES payments (id),
    refund_id     INTEGER REFERENCES refunds (id),
    CHECK ((kind IN ('accrual', 'manual_credit', 'refund_spend') AND amount > 0)
        OR (kind IN ('spend', 'manual_debit', 'refund_accrual') AND amount < 0)),
    CHECK ((op_id IS NOT NULL) + (payment_id IS NOT NULL) + (refund_id IS NOT NULL) = 1)
);
INSERT INTO operations_v9 (id, guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
    SELECT id, guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id FROM operations;
DROP TABLE operations;
ALTER TABLE operations_v9 RENAME TO operations;
CREATE UNIQUE INDEX operations_by_op ON operations (op_id) WHERE op_id IS NOT NULL;
CREATE INDEX operations_by_guest_at ON operations (guest_id, at);
