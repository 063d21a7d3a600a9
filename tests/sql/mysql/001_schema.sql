-- The tables tests/mysql.rs shares, created once per process by the `mysql` entry's setup
-- (never inside a test: MySQL DDL commits). Idempotent, and serialized by a named lock
-- because several test processes (cargo nextest) may run it at once.
DO GET_LOCK('vq_mysql_schema', 60);
CREATE TABLE IF NOT EXISTS vq_mysql_items (
    id INT AUTO_INCREMENT PRIMARY KEY,
    label VARCHAR(100) NOT NULL,
    owner INT NOT NULL DEFAULT 0,
    KEY (label)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS vq_mysql_fk_parent (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS vq_mysql_fk_child (
    id INT AUTO_INCREMENT PRIMARY KEY,
    parent_id INT NOT NULL,
    FOREIGN KEY (parent_id) REFERENCES vq_mysql_fk_parent (id)
) ENGINE=InnoDB;
-- The conformance suite's probe: one BIGINT column, no key (parallel test processes
-- insert the same values in their own uncommitted transactions and must not wait).
CREATE TABLE IF NOT EXISTS vq_mysql_probe (v BIGINT NOT NULL) ENGINE=InnoDB;
DO RELEASE_LOCK('vq_mysql_schema');
