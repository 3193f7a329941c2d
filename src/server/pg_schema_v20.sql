-- Schema version 20: what each guest spent per UTC day (src/loyalty/spend_days.rs), booked with
-- each payment and refund, so that the spending a group move counts over the group period is read
-- as one sum per day instead of every check of the period. Filled here from the ledger as it is:
-- the statement that follows this file's text is spend_days::REBUILD_SQL.
CREATE TABLE guest_spend_days (
    guest_id BIGINT NOT NULL REFERENCES guests (id),
    day      BIGINT NOT NULL,
    amount   BIGINT NOT NULL,
    PRIMARY KEY (guest_id, day)
);
