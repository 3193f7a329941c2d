-- Schema version 17: the checks' and returns' figures summed per organisation, quarter of an
-- hour and till (the operation key's scope), booked in the payment's or refund's own
-- transaction, so that a report over a month of a chain's checks reads a few thousand sums
-- instead of a million rows (see src/loyalty/report.rs). Filled here from the ledger as it is:
-- the statement that follows this file's text is report::REBUILD_SQL.
CREATE TABLE report_quarters (
    org            TEXT    NOT NULL,
    quarter        BIGINT  NOT NULL,
    scope          TEXT    NOT NULL,
    checks         BIGINT  NOT NULL DEFAULT 0,
    revenue        BIGINT  NOT NULL DEFAULT 0,
    spent          BIGINT  NOT NULL DEFAULT 0,
    accrued        BIGINT  NOT NULL DEFAULT 0,
    returns        BIGINT  NOT NULL DEFAULT 0,
    returned       BIGINT  NOT NULL DEFAULT 0,
    spend_returned BIGINT  NOT NULL DEFAULT 0,
    accrual_taken  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (org, quarter, scope)
);
