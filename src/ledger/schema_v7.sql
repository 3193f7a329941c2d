-- Schema version 7: the back office's accounts, and the index its guest search by name uses.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    org           TEXT    NOT NULL,
    login         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'manager')),
    created_at    INTEGER NOT NULL
);
CREATE INDEX guests_by_org_name ON guests (org, name);
-- A blocked guest is not identified and cannot hold bonuses (the back office's «Заблокировать»).
ALTER TABLE guests ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1));
CREATE INDEX operations_by_guest_at ON operations (guest_id, at);
