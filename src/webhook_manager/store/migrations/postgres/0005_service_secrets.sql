-- Secrets of the service itself, made once and shared by every process of the store: the key that signs
-- identity tokens (docs/api.md, "Identity tokens").
CREATE TABLE service_secrets (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
