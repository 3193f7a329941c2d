-- Schema version 11: when each till token was last used (the back office's «Кассы» page). The
-- token table is made here if the server never made it yet (the same shape it makes), so that
-- the column is added either way.
CREATE TABLE IF NOT EXISTS till_tokens (
    org        TEXT    NOT NULL,
    till       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org, till)
);
ALTER TABLE till_tokens ADD COLUMN last_seen_at INTEGER;
