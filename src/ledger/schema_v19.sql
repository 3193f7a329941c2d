-- Schema version 19: a guest's further bonus accounts. An account is a guest row of its own (its
-- balance, holds, cards, group and history are the account's) that names the guest it belongs to;
-- the guest's own row is the main account (account_of NULL). The name, the phone and a block are
-- the person's: read from the main row, a block set on it set on every account.
ALTER TABLE guests ADD COLUMN account_of INTEGER REFERENCES guests (id);
ALTER TABLE guests ADD COLUMN account_name TEXT;
CREATE INDEX guests_accounts ON guests (account_of);
-- A guest's accounts have different names, so that a form sent twice opens one account.
CREATE UNIQUE INDEX guests_account_names ON guests (account_of, account_name);
