-- The shop's schema on MySQL/MariaDB: what the server creates at start (examples/shop/
-- store.rs includes this file), and the setup of the capture entry shop_mysql
-- (examples/venomqa.yaml), so the tables exist before the first checkpoint. Keep it in
-- step with the SQLite schema in store.rs.
CREATE TABLE IF NOT EXISTS users (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    email VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    token VARCHAR(64) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS products (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    sku VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    price_cents BIGINT NOT NULL,
    stock BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    status VARCHAR(16) NOT NULL,
    total_cents BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity BIGINT NOT NULL,
    price_cents BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS vouchers (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    code VARCHAR(64) NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    used_by_order BIGINT REFERENCES orders (id)
);
CREATE TABLE IF NOT EXISTS payments (
    id BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id BIGINT NOT NULL UNIQUE REFERENCES orders (id),
    method VARCHAR(16) NOT NULL,
    amount_cents BIGINT NOT NULL,
    reference VARCHAR(64) NOT NULL
);
