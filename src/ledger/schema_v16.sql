-- Schema version 16: the reports' periods found by time. The report per day and till and the
-- till's shift report read a period's payments, returns, redeemed gifts and new guests; without
-- these indexes each of them scans the whole table (a chain's ninety days of payments to answer
-- for one day or thirty).
CREATE INDEX payments_by_time ON payments (at);
CREATE INDEX refunds_by_time ON refunds (at);
CREATE INDEX gift_codes_by_redemption ON gift_codes (redeemed_at) WHERE redeemed_at IS NOT NULL;
CREATE INDEX guests_by_creation ON guests (org, created_at);
