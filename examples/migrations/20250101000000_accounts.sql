-- The bank example's schema (tests/sqlx_port.rs), as `sqlx migrate add accounts` writes it.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
