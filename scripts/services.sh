#!/usr/bin/env bash
# Starts every server the full test suite needs, installing it first where it is missing
# (Debian packages; SecantusDB from PyPI for the MongoDB wire protocol). Idempotent: a
# server that already answers is left alone. Exits non-zero, saying which server and why,
# when one cannot be brought up.
#
#   MariaDB     127.0.0.1:3306  root, empty password, database `test`
#   PostgreSQL  127.0.0.1:5432  trust auth, user postgres, database `test`
#   Redis       127.0.0.1:6379
#   MongoDB     127.0.0.1:27017 (secantusd-py) unless VENOMQA_MONGODB_URL points elsewhere
#   Chromium    installed only (Debian's chromium), for the HTML report tests
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, seconds, command...
    local name=$1 seconds=$2
    shift 2
    for _ in $(seq 1 $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$name did not come up within ${seconds}s"
}

mariadb_tcp() { mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1'; }

start_mariadb() {
    if mariadb_tcp >/dev/null 2>&1; then log "MariaDB is up"; return; fi
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    if [ ! -d /var/lib/mysql/mysql ]; then
        log "initialising the MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if ! port_open 3306; then
        log "starting MariaDB"
        # --user: a stock Debian config leaves `user = mysql` commented out, and mariadbd
        # refuses to run as root.
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    fi
    wait_for MariaDB 60 port_open 3306
    if ! mariadb_tcp >/dev/null 2>&1; then
        # A fresh Debian install lets root in over the socket only: allow the empty password over TCP.
        log "allowing root over TCP with an empty password"
        wait_for "MariaDB socket" 30 mariadb -uroot -e 'SELECT 1'
        mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
    fi
    wait_for "MariaDB over TCP" 30 mariadb_tcp
    mariadb --protocol=TCP -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
    log "MariaDB is up"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
# -w: never prompt for a password (a fresh cluster asks for one over TCP until trust is set).
pg_sql() { PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U postgres -d postgres "$@" </dev/null; }

start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        apt_install postgresql postgresql-client
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if ! pg_ready; then
        log "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    wait_for PostgreSQL 60 pg_ready
    if ! pg_sql -Atc 'SELECT 1' >/dev/null 2>&1; then
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
            log "enabling trust authentication on 127.0.0.1 (test machines only)"
            sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload
        fi
        wait_for "PostgreSQL trust auth" 30 pg_sql -Atc 'SELECT 1'
    fi
    if [ "$(pg_sql -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
        pg_sql -qc 'CREATE DATABASE test'
    fi
    log "PostgreSQL is up"
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

start_redis() {
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server redis-tools
    if ! redis_ping; then
        log "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    wait_for Redis 30 redis_ping
    log "Redis is up"
}

SECANTUS_VERSION=${SECANTUS_VERSION:-0.7.0b3}
SECANTUS_VENV=${SECANTUS_VENV:-/opt/venomqa-secantus}

# secantusd-py from PATH, else from our own virtualenv (installed there on first use, so a
# system Python that refuses pip installs, PEP 668, is never touched).
secantusd_bin() {
    if command -v secantusd-py >/dev/null 2>&1; then
        command -v secantusd-py
        return
    fi
    if [ ! -x "$SECANTUS_VENV/bin/secantusd-py" ]; then
        command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
        python3 -m venv "$SECANTUS_VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$SECANTUS_VENV"; }
        log "installing SecantusDB==$SECANTUS_VERSION (a MongoDB wire-protocol server) from PyPI into $SECANTUS_VENV"
        "$SECANTUS_VENV/bin/pip" install -q "SecantusDB==$SECANTUS_VERSION" || die "pip could not install SecantusDB"
    fi
    echo "$SECANTUS_VENV/bin/secantusd-py"
}

start_mongodb() {
    if [ -n "${VENOMQA_MONGODB_URL:-}" ]; then
        log "MongoDB: using VENOMQA_MONGODB_URL, not starting a local server"
        return
    fi
    if port_open 27017; then log "MongoDB-compatible server is up"; return; fi
    local bin
    bin=$(secantusd_bin)
    log "starting $bin on 127.0.0.1:27017 (log: /tmp/venomqa-secantusd.log)"
    nohup "$bin" --host 127.0.0.1 --port 27017 --storage-path :memory: \
        >/tmp/venomqa-secantusd.log 2>&1 </dev/null &
    wait_for "secantusd-py (see /tmp/venomqa-secantusd.log)" 60 port_open 27017
    log "MongoDB-compatible server is up"
}

# The resilience tests start private servers of their own (on free ports, in temp dirs)
# and restart them mid-suite: they need the server programs, not only a running server.
check_private_server_tools() { # mariadb | postgres
    case "$1" in
        mariadb)
            { command -v mariadb-install-db >/dev/null 2>&1 && [ -x /usr/sbin/mariadbd ]; } ||
                apt_install mariadb-server mariadb-client
            command -v mariadb-install-db >/dev/null 2>&1 || die "mariadb-install-db is missing after installing mariadb-server"
            ;;
        postgres)
            ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
            ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "initdb is missing after installing postgresql"
            command -v pg_isready >/dev/null 2>&1 || apt_install postgresql-client
            id postgres >/dev/null 2>&1 || die "there is no 'postgres' user (PostgreSQL refuses to run as root)"
            ;;
    esac
}

# Not a server: the browser the HTML report tests open the reports in (headless, started
# by each test). Installed where missing; the tests fail loudly without it.
install_chromium() {
    if [ -n "${VENOMQA_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
        log "Chromium is installed"
        return
    fi
    apt_install chromium
    command -v chromium >/dev/null 2>&1 || die "chromium is missing after installing Debian's chromium package"
    log "Chromium is installed"
}

[ "$(id -u)" = 0 ] || die "run me as root (I install packages and start servers)"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mariadb postgres redis mongodb chromium)
for t in "${targets[@]}"; do
    case "$t" in
        mariadb | mysql) start_mariadb; check_private_server_tools mariadb ;;
        postgres | postgresql) start_postgres; check_private_server_tools postgres ;;
        redis) start_redis ;;
        mongodb | mongo) start_mongodb ;;
        chromium) install_chromium ;;
        *) die "unknown server '$t' (known: mariadb postgres redis mongodb chromium)" ;;
    esac
done
