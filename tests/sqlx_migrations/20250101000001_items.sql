-- The sqlx session tests' schema (tests/sqlx_*.rs), applied by sqlx::migrate! on
-- PostgreSQL, MySQL/MariaDB and SQLite alike.
CREATE TABLE vq_sqlx_items (marker VARCHAR(100) NOT NULL);
CREATE TABLE vq_sqlx_probe (v BIGINT NOT NULL);
