-- 0009_token_index_order: the client index of tokens ordered by expiry.
--
-- tokens_client_id (client_id) stored its entries as (client_id, hash):
-- each issued token went to a random leaf of the index, one more page
-- written to the WAL per token. Keyed (client_id, expires_at), a client's
-- new entries go to the end of its range, so the tokens of one client in a
-- group commit share a leaf. The index serves the same lookups (a client's
-- deletion, by client_id).
DROP INDEX tokens_client_id;
CREATE INDEX tokens_client_expires_at ON tokens (client_id, expires_at);
