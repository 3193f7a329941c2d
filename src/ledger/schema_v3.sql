-- Schema version 3: payments a till took offline.
-- A payment a till took offline (the owner allows it, capped): what the till asked to debit.
-- The server debits what the guest still has; NULL for payments made online.
ALTER TABLE payments ADD COLUMN offline_requested INTEGER CHECK (offline_requested >= 0);
