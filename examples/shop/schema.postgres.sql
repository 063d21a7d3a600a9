-- The axum shop's schema on PostgreSQL (examples/shop/axum_shop.rs): the setup of the
-- capture entry axum_shop (examples/venomqa.yaml), run by every test process, so it is
-- idempotent. The catalogue is part of it: the tests' baseline.
CREATE TABLE IF NOT EXISTS products (
    id int PRIMARY KEY,
    name text NOT NULL UNIQUE,
    price_cents int NOT NULL,
    stock int NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    product_id int NOT NULL REFERENCES products (id),
    qty int NOT NULL CHECK (qty > 0),
    status text NOT NULL DEFAULT 'pending',
    total_cents int NOT NULL,
    refunded_cents int NOT NULL DEFAULT 0
);
-- An audit log without a key: duplicate rows are possible, and capture must bring back
-- exactly the rows there were.
CREATE TABLE IF NOT EXISTS audit (
    order_id int NOT NULL,
    event text NOT NULL
);
INSERT INTO products (id, name, price_cents, stock)
VALUES (1, 'widget', 500, 5), (2, 'gadget', 2500, 1)
ON CONFLICT (id) DO NOTHING;
