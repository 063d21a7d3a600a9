-- The capture tests' schema (tests/mysql_capture.rs): a parent with ON DELETE CASCADE
-- children, a composite key updated by cascade, a SET NULL reference, a keyless table,
-- and the conformance probe (keyless too). Idempotent: it runs in every test process.
CREATE TABLE IF NOT EXISTS users (
    id INT AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(100) NOT NULL UNIQUE,
    name VARCHAR(50),
    born DATE,
    balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
    avatar BLOB
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS orders (
    id INT AUTO_INCREMENT PRIMARY KEY,
    user_id INT NOT NULL,
    total DECIMAL(10, 2),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS order_items (
    order_id INT NOT NULL,
    line INT NOT NULL,
    sku VARCHAR(20),
    PRIMARY KEY (order_id, line),
    FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS prefs (
    id INT AUTO_INCREMENT PRIMARY KEY,
    user_id INT NULL,
    theme VARCHAR(10),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS audit_log (message TEXT, at INT) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS vq_capture_probe (v BIGINT) ENGINE=InnoDB;
INSERT IGNORE INTO users (id, email, name, born, balance, avatar) VALUES
    (1, 'ann@example.com', 'Ann', '1990-01-02', 10.50, X'00FF10'),
    (2, 'bob@example.com', 'Bob', NULL, 0, NULL),
    (3, 'cy@example.com', 'Cy', '2000-12-31', -3.25, X'');
INSERT IGNORE INTO orders (id, user_id, total) VALUES (1, 1, 10.50), (2, 1, 3.25), (3, 2, 7.00);
INSERT IGNORE INTO order_items VALUES (1, 1, 'sku-1'), (1, 2, 'sku-2'), (2, 1, 'sku-3'), (3, 1, 'sku-4');
INSERT IGNORE INTO prefs (id, user_id, theme) VALUES (1, 1, 'dark'), (2, 2, 'light');
INSERT INTO audit_log SELECT 'seeded', 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM audit_log);
INSERT INTO audit_log SELECT 'seeded', 1 FROM DUAL WHERE (SELECT COUNT(*) FROM audit_log) = 1;
