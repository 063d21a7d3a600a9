-- One row each time this migration runs: the tests check it ran once per database.
CREATE TABLE vq_sqlx_migration_runs (ran INTEGER NOT NULL);
INSERT INTO vq_sqlx_migration_runs (ran) VALUES (1);
