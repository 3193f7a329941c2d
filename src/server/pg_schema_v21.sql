-- Schema version 21: a server keeps the tills' tokens it has found in memory
-- (src/server/token_cache.rs), trusting them only while it listens on this channel. Every
-- statement that replaces or removes a token (or moves it to another till) tells every listening
-- server, whichever program made the change: the servers, the command line, or SQL by hand.
-- A new till's token needs no word: nothing is kept of a token not yet found.
-- NOTIFY reaches every listener on the database, so the word names the schema the tokens live
-- in: a server forgets only for a change to its own tokens, not for another schema's.
CREATE FUNCTION till_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loyalty_till_tokens', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE TRIGGER till_tokens_changed
    AFTER UPDATE OF token_hash, org, till OR DELETE OR TRUNCATE ON till_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION till_tokens_changed();
