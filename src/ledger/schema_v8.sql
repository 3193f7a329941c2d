-- Schema version 8: the idempotency record without a rowid. Every write adds one, keyed by its
-- operation id; as a rowid table each insert wrote two b-trees (the rows and the key's index),
-- clustered on the key it writes one, a payment's commit the less to sync.
CREATE TABLE op_log_v8 (
    op_key      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    fingerprint TEXT,
    answer      TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO op_log_v8 (op_key, kind, fingerprint, answer) SELECT op_key, kind, fingerprint, answer FROM op_log;
DROP TABLE op_log;
ALTER TABLE op_log_v8 RENAME TO op_log;
