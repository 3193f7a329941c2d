-- Schema version 17: the checks' and returns' figures summed per organisation, quarter of an
-- hour and till (the operation key's scope), booked in the payment's or refund's own
-- transaction, so that a report over a month of a chain's checks reads a few thousand sums
-- instead of a million rows (see src/loyalty/report.rs). Filled here from the ledger as it is:
-- the statement that follows this file's text is report::REBUILD_SQL.
CREATE TABLE report_quarters (
    org            TEXT    NOT NULL,
    quarter        INTEGER  NOT NULL,
    scope          TEXT    NOT NULL,
    checks         INTEGER  NOT NULL DEFAULT 0,
    revenue        INTEGER  NOT NULL DEFAULT 0,
    spent          INTEGER  NOT NULL DEFAULT 0,
    accrued        INTEGER  NOT NULL DEFAULT 0,
    returns        INTEGER  NOT NULL DEFAULT 0,
    returned       INTEGER  NOT NULL DEFAULT 0,
    spend_returned INTEGER  NOT NULL DEFAULT 0,
    accrual_taken  INTEGER  NOT NULL DEFAULT 0,
    PRIMARY KEY (org, quarter, scope)
);
