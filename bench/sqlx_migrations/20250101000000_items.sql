-- The sqlx row's schema (src/sqlx_bench.rs): valid on PostgreSQL and MySQL/MariaDB.
CREATE TABLE vq_bench_items (id BIGINT, label VARCHAR(100) NOT NULL);
