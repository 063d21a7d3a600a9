-- The capture tests' schema (tests/postgres_capture.rs): cascades, a composite key
-- updated by cascade, SET NULL, an identity column, sequences, a keyless table, types
-- that JSON would lose, and the conformance probe. Idempotent: it runs in every process.
CREATE TABLE IF NOT EXISTS users (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    born date,
    balance numeric(12, 2) NOT NULL DEFAULT 0,
    avatar bytea,
    tags text[],
    meta jsonb
);
CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    total numeric(10, 2)
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id int NOT NULL REFERENCES orders (id) ON DELETE CASCADE ON UPDATE CASCADE,
    line int NOT NULL,
    sku text,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE IF NOT EXISTS prefs (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int REFERENCES users (id) ON DELETE SET NULL,
    theme text
);
CREATE TABLE IF NOT EXISTS audit_log (message text, at int);
-- A keyless table whose types have no hash function: capture gives it no row-hash index,
-- and the app's writes to it must keep working.
CREATE TABLE IF NOT EXISTS events_json (payload json, at point);
CREATE TABLE IF NOT EXISTS vq_capture_probe (v bigint);
INSERT INTO users (id, email, name, born, balance, avatar, tags, meta) VALUES
    (1, 'ann@example.com', 'Ann', '1990-01-02', 10.50, '\x00ff10', '{x,y}', '{"k": 1}'),
    (2, 'bob@example.com', 'Bob', NULL, 0, NULL, NULL, NULL),
    (3, 'cy@example.com', 'Cy', '2000-12-31', -3.25, '\x', '{}', '[]')
    ON CONFLICT DO NOTHING;
SELECT setval('users_id_seq', 3) WHERE (SELECT last_value FROM users_id_seq) < 3;
INSERT INTO orders (id, user_id, total) VALUES (1, 1, 10.50), (2, 1, 3.25), (3, 2, 7.00) ON CONFLICT DO NOTHING;
SELECT setval('orders_id_seq', 3) WHERE (SELECT last_value FROM orders_id_seq) < 3;
INSERT INTO order_items VALUES (1, 1, 'sku-1'), (1, 2, 'sku-2'), (2, 1, 'sku-3'), (3, 1, 'sku-4') ON CONFLICT DO NOTHING;
INSERT INTO prefs (user_id, theme) SELECT 1, 'dark' WHERE NOT EXISTS (SELECT 1 FROM prefs);
INSERT INTO prefs (user_id, theme) SELECT 2, 'light' WHERE (SELECT count(*) FROM prefs) = 1;
INSERT INTO audit_log SELECT 'seeded', 1 WHERE NOT EXISTS (SELECT 1 FROM audit_log);
INSERT INTO audit_log SELECT 'seeded', 1 WHERE (SELECT count(*) FROM audit_log) = 1;
INSERT INTO events_json SELECT '{"seeded": 1}', '(1,1)' WHERE NOT EXISTS (SELECT 1 FROM events_json);
