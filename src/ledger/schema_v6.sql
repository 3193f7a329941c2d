-- Schema version 6: what a group's accrual percentage is taken of, per programme: 'paid' (the
-- part of the amount due paid with money, as before) or 'due' (the whole amount due).
ALTER TABLE program ADD COLUMN accrual_basis TEXT NOT NULL DEFAULT 'paid' CHECK (accrual_basis IN ('paid', 'due'));
ALTER TABLE programs ADD COLUMN accrual_basis TEXT NOT NULL DEFAULT 'paid' CHECK (accrual_basis IN ('paid', 'due'));
