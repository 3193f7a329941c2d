-- Schema version 13: a check paid from several bonus accounts (cards presented one after
-- another). The owner's payment is the check; each other account's debit is a payment of its own
-- (in that guest's history) that names the owner's. A share carries the check's amount due so a
-- return splits in the same proportion; it is not a visit of its guest (no group spend, not
-- listed as a check).
ALTER TABLE payments ADD COLUMN owner_payment_id BIGINT REFERENCES payments (id);
CREATE INDEX payments_by_owner_payment ON payments (owner_payment_id) WHERE owner_payment_id IS NOT NULL;
