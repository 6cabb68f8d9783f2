-- One row that readiness (GET /readyz) writes to, at most once a second, to tell that the store takes writes.
CREATE TABLE store_probe (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    probes  BIGINT NOT NULL
);
INSERT INTO store_probe (id, probes) VALUES (1, 0);
