-- Schema version 14: stamp cards, promotions and gifts defined in the back office, per
-- organisation. A stamp card or promotion made before this version has no organisation (NULL)
-- and stays shown to every organisation's guests, as it was. A promotion gains the weekdays it
-- runs on (bit 0 Monday … bit 6 Sunday) and its hours in the programme's local time (minutes
-- from midnight, start included, end excluded). Gifts are a catalogue: name, the POS item code
-- (unique in the organisation) and the cost in points (kopecks); an issued gift code names the
-- gift it came from (codes issued before this version name none).
ALTER TABLE stamp_cards ADD COLUMN org TEXT;
ALTER TABLE promotions ADD COLUMN org TEXT;
ALTER TABLE promotions ADD COLUMN weekdays INTEGER NOT NULL DEFAULT 127 CHECK (weekdays BETWEEN 1 AND 127);
ALTER TABLE promotions ADD COLUMN day_start_min INTEGER NOT NULL DEFAULT 0 CHECK (day_start_min BETWEEN 0 AND 1439);
ALTER TABLE promotions ADD COLUMN day_end_min INTEGER NOT NULL DEFAULT 1440 CHECK (day_end_min BETWEEN 1 AND 1440);
CREATE INDEX stamp_cards_by_org ON stamp_cards (org);
CREATE INDEX promotions_by_org ON promotions (org);
CREATE TABLE gifts (
    id       INTEGER PRIMARY KEY,
    org      TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    pos_code TEXT    NOT NULL,
    points   INTEGER NOT NULL CHECK (points >= 0),
    active   INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    UNIQUE (org, pos_code)
);
ALTER TABLE gift_codes ADD COLUMN gift_id INTEGER REFERENCES gifts (id);
