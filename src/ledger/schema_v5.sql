-- Schema version 5: organisations own their identifiers, gift codes and programme.
-- A card number, phone or gift code is unique within an organisation, not in the whole file:
-- two cafes on one server can both issue card 0001. Each organisation has its own programme;
-- `program` (one row) stays as what a new organisation starts with.
CREATE TABLE identifiers_v5 (
    org      TEXT    NOT NULL,
    kind     TEXT    NOT NULL
             CHECK (kind IN ('app_qr', 'card_barcode', 'magnetic_stripe', 'manual_code', 'phone')),
    value    TEXT    NOT NULL,
    guest_id INTEGER NOT NULL REFERENCES guests (id),
    PRIMARY KEY (org, kind, value)
);
INSERT INTO identifiers_v5 (org, kind, value, guest_id)
    SELECT g.org, i.kind, i.value, i.guest_id FROM identifiers i JOIN guests g ON g.id = i.guest_id;
DROP TABLE identifiers;
ALTER TABLE identifiers_v5 RENAME TO identifiers;
CREATE INDEX identifiers_by_value ON identifiers (value);

CREATE TABLE gift_codes_v5 (
    id          INTEGER PRIMARY KEY,
    org         TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    guest_id    INTEGER NOT NULL REFERENCES guests (id),
    gift_name   TEXT    NOT NULL,
    points      INTEGER NOT NULL CHECK (points >= 0),
    redeemed_at INTEGER,
    payment_id  INTEGER REFERENCES payments (id),
    UNIQUE (org, code)
);
INSERT INTO gift_codes_v5 (org, code, guest_id, gift_name, points, redeemed_at, payment_id)
    SELECT g.org, c.code, c.guest_id, c.gift_name, c.points, c.redeemed_at, c.payment_id
    FROM gift_codes c JOIN guests g ON g.id = c.guest_id ORDER BY c.rowid;
DROP TABLE gift_codes;
ALTER TABLE gift_codes_v5 RENAME TO gift_codes;
CREATE INDEX gift_codes_by_guest ON gift_codes (guest_id);

CREATE TABLE programs (
    org                TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    max_check_bp       INTEGER NOT NULL CHECK (max_check_bp BETWEEN 0 AND 10000),
    spend_step         INTEGER NOT NULL CHECK (spend_step >= 1),
    hold_ttl_secs      INTEGER NOT NULL CHECK (hold_ttl_secs > 0),
    group_period_days  INTEGER NOT NULL CHECK (group_period_days > 0),
    utc_offset_minutes INTEGER NOT NULL CHECK (utc_offset_minutes BETWEEN -1440 AND 1440)
);
-- Every organisation that has guests keeps the programme it had.
INSERT INTO programs
    SELECT o.org, p.name, p.max_check_bp, p.spend_step, p.hold_ttl_secs, p.group_period_days, p.utc_offset_minutes
    FROM (SELECT org FROM guests UNION SELECT 'default') o CROSS JOIN program p WHERE p.id = 1;
