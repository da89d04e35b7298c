-- One change counter per kind of cached data ('keys', 'clients'). Every write to key sets or
-- clients bumps its counter in the same transaction; each replica reads this small table a few
-- times a second and drops its caches of a kind whose counter moved (service/changes.rs).
CREATE TABLE IF NOT EXISTS portcullis_changes (
    kind TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO portcullis_changes (kind, version) VALUES ('keys', 0), ('clients', 0) ON CONFLICT (kind) DO NOTHING;
