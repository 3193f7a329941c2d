-- Schema version 12: the audit log of manual changes (the back office's «Журнал изменений»): who,
-- when, what and why, and the guest it touched. A change repeated under the same operation id is
-- logged once. Phones and card codes are stored masked.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    org      TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    guest_id INTEGER,
    detail   TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    op_key   TEXT    UNIQUE
);
CREATE INDEX audit_log_by_org ON audit_log (org, id);
CREATE INDEX audit_log_by_guest ON audit_log (guest_id, id);
