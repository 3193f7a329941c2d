-- Schema version 4: one idempotency record for every write.
-- The operation id (with the organisation and till in front on the server), the kind of write,
-- a digest of the whole request and the answer as JSON. Writes made before this version are
-- copied in without a digest (their content was not kept): a repeat of one gets its answer.
CREATE TABLE op_log (
    op_key      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    fingerprint TEXT,
    answer      TEXT NOT NULL
);
INSERT OR IGNORE INTO op_log
    SELECT op_id, 'hold', NULL, json_object('hold_id', id, 'amount', amount, 'expires_at', expires_at) FROM holds;
INSERT OR IGNORE INTO op_log
    SELECT op_id, CASE WHEN offline_requested IS NULL THEN 'commit' ELSE 'offline_payment' END, NULL,
           json_object('spent', spent, 'accrued', accrued, 'balance_after', balance_after, 'new_group', new_group)
    FROM payments;
INSERT OR IGNORE INTO op_log SELECT op_id, 'void', NULL, 'null' FROM hold_voids;
INSERT OR IGNORE INTO op_log
    SELECT op_id, 'refund', NULL,
           json_object('amount', amount, 'spend_returned', spend_returned, 'accrual_taken', accrual_taken,
                       'unrecovered', unrecovered, 'balance_after', balance_after)
    FROM refunds;
INSERT OR IGNORE INTO op_log
    SELECT op_id, kind, NULL, CAST(balance_after AS TEXT) FROM operations WHERE op_id IS NOT NULL;
