-- Schema version 4 on PostgreSQL (src/ledger/schema_v4.sql in PostgreSQL's
-- dialect): one idempotency record for every write.
-- The operation id (with the organisation and till in front on the server), the kind of write,
-- a digest of the whole request and the answer as JSON. Writes made before this version are
-- copied in without a digest (their content was not kept): a repeat of one gets its answer.
CREATE TABLE op_log (
    op_key      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    fingerprint TEXT,
    answer      TEXT NOT NULL
);
INSERT INTO op_log
    SELECT op_id, 'hold', NULL, json_build_object('hold_id', id, 'amount', amount, 'expires_at', expires_at)::TEXT FROM holds
    ON CONFLICT DO NOTHING;
INSERT INTO op_log
    SELECT op_id, CASE WHEN offline_requested IS NULL THEN 'commit' ELSE 'offline_payment' END, NULL,
           json_build_object('spent', spent, 'accrued', accrued, 'balance_after', balance_after, 'new_group', new_group)::TEXT
    FROM payments
    ON CONFLICT DO NOTHING;
INSERT INTO op_log SELECT op_id, 'void', NULL, 'null' FROM hold_voids
    ON CONFLICT DO NOTHING;
INSERT INTO op_log
    SELECT op_id, 'refund', NULL,
           json_build_object('amount', amount, 'spend_returned', spend_returned, 'accrual_taken', accrual_taken,
                       'unrecovered', unrecovered, 'balance_after', balance_after)::TEXT
    FROM refunds
    ON CONFLICT DO NOTHING;
INSERT INTO op_log
    SELECT op_id, kind, NULL, balance_after::TEXT FROM operations WHERE op_id IS NOT NULL
    ON CONFLICT DO NOTHING;
