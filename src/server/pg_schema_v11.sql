-- Schema version 11: when each till token was last used (the back office's «Кассы» page).
ALTER TABLE till_tokens ADD COLUMN last_seen_at BIGINT;
