-- The embedded loyalty ledger, schema version 1 (kept in PRAGMA user_version).
-- Amounts are integers in kopecks, percentages basis points, times Unix seconds.
-- The CHECK constraints repeat the engine's rules so that a bug cannot store a broken ledger.

-- The programme's settings: exactly one row, created with neutral defaults.
CREATE TABLE program (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    name               TEXT    NOT NULL,
    max_check_bp       INTEGER NOT NULL CHECK (max_check_bp BETWEEN 0 AND 10000),
    spend_step         INTEGER NOT NULL CHECK (spend_step >= 1),
    hold_ttl_secs      INTEGER NOT NULL CHECK (hold_ttl_secs > 0),
    group_period_days  INTEGER NOT NULL CHECK (group_period_days > 0),
    utc_offset_minutes INTEGER NOT NULL CHECK (utc_offset_minutes BETWEEN -1440 AND 1440)
);
INSERT INTO program VALUES (1, 'Loyalty', 10000, 1, 900, 365, 0);

-- Client groups. Only groups of rank >= 1 take part in moves by spend.
CREATE TABLE guest_groups (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    rank              INTEGER NOT NULL,
    discount_bp       INTEGER NOT NULL CHECK (discount_bp BETWEEN 0 AND 10000),
    accrual_bp        INTEGER NOT NULL CHECK (accrual_bp >= 0),
    spend_threshold   INTEGER NOT NULL CHECK (spend_threshold >= 0),
    never_downgrade   INTEGER NOT NULL CHECK (never_downgrade IN (0, 1)),
    daily_ops_limit   INTEGER NOT NULL CHECK (daily_ops_limit >= 0),
    daily_spend_limit INTEGER NOT NULL CHECK (daily_spend_limit >= 0)
);

-- `balance` is the sum of the guest's operations, kept up to date in the same transaction.
CREATE TABLE guests (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    phone      TEXT,
    group_id   INTEGER NOT NULL REFERENCES guest_groups (id),
    balance    INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at INTEGER NOT NULL
);

CREATE TABLE identifiers (
    kind     TEXT    NOT NULL
             CHECK (kind IN ('app_qr', 'card_barcode', 'magnetic_stripe', 'manual_code', 'phone')),
    value    TEXT    NOT NULL,
    guest_id INTEGER NOT NULL REFERENCES guests (id),
    PRIMARY KEY (kind, value)
);
CREATE INDEX identifiers_by_value ON identifiers (value);

-- Every successful identify, for the daily operations limit.
CREATE TABLE identifications (
    id       INTEGER PRIMARY KEY,
    guest_id INTEGER NOT NULL REFERENCES guests (id),
    via      TEXT    NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX identifications_by_guest ON identifications (guest_id, at);

-- Two-phase spending: a hold reserves bonuses until it is committed, voided or expires.
CREATE TABLE holds (
    id               INTEGER PRIMARY KEY,
    op_id            TEXT    NOT NULL UNIQUE,
    guest_id         INTEGER NOT NULL REFERENCES guests (id),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    status           TEXT    NOT NULL CHECK (status IN ('open', 'committed', 'voided', 'expired')),
    committed_amount INTEGER CHECK (committed_amount BETWEEN 0 AND amount),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    closed_at        INTEGER,
    CHECK ((status = 'committed') = (committed_amount IS NOT NULL)),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX holds_by_guest ON holds (guest_id, status);
CREATE INDEX holds_open_by_expiry ON holds (status, expires_at);

-- The operation ids of void requests, so a retried void is recognised.
CREATE TABLE hold_voids (
    op_id   TEXT    PRIMARY KEY,
    hold_id INTEGER NOT NULL REFERENCES holds (id),
    at      INTEGER NOT NULL
);

-- One row per paid check: the request (for idempotency), the receipt, and the visit that
-- group moves are computed from (`amount_due` at `at`).
CREATE TABLE payments (
    id            INTEGER PRIMARY KEY,
    op_id         TEXT    NOT NULL UNIQUE,
    guest_id      INTEGER NOT NULL REFERENCES guests (id),
    hold_id       INTEGER UNIQUE REFERENCES holds (id),
    spent         INTEGER NOT NULL CHECK (spent >= 0),
    subtotal      INTEGER NOT NULL CHECK (subtotal >= 0),
    gift_codes    TEXT    NOT NULL,
    amount_due    INTEGER NOT NULL CHECK (amount_due >= 0),
    accrued       INTEGER NOT NULL CHECK (accrued >= 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    new_group     TEXT,
    at            INTEGER NOT NULL
);
CREATE INDEX payments_by_guest ON payments (guest_id, at);

-- Every balance change. Manual operations carry the till's op_id; checkout ones their payment.
CREATE TABLE operations (
    id            INTEGER PRIMARY KEY,
    guest_id      INTEGER NOT NULL REFERENCES guests (id),
    kind          TEXT    NOT NULL,
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    note          TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    op_id         TEXT UNIQUE,
    payment_id    INTEGER REFERENCES payments (id),
    CHECK ((kind IN ('accrual', 'manual_credit') AND amount > 0)
        OR (kind IN ('spend', 'manual_debit') AND amount < 0)),
    CHECK ((op_id IS NULL) <> (payment_id IS NULL))
);
CREATE INDEX operations_by_guest ON operations (guest_id, kind, at);

CREATE TABLE gift_codes (
    code        TEXT    PRIMARY KEY,
    guest_id    INTEGER NOT NULL REFERENCES guests (id),
    gift_name   TEXT    NOT NULL,
    points      INTEGER NOT NULL CHECK (points >= 0),
    redeemed_at INTEGER,
    payment_id  INTEGER REFERENCES payments (id)
);

CREATE TABLE stamp_cards (
    id     INTEGER PRIMARY KEY,
    name   TEXT    NOT NULL,
    needed INTEGER NOT NULL CHECK (needed > 0),
    reward TEXT    NOT NULL
);

CREATE TABLE stamps (
    guest_id  INTEGER NOT NULL REFERENCES guests (id),
    card_id   INTEGER NOT NULL REFERENCES stamp_cards (id),
    collected INTEGER NOT NULL CHECK (collected >= 0),
    PRIMARY KEY (guest_id, card_id)
);

CREATE TABLE promotions (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL CHECK (ends_at > starts_at)
);
