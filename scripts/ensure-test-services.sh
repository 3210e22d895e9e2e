#!/usr/bin/env bash
# Makes sure what the tests talk to is up: MariaDB (127.0.0.1:3306, root, empty password),
# Mosquitto (127.0.0.1:1883, anonymous) and Debian's Chromium for the Playwright UI tests.
#
# Idempotent and fast when everything already runs. On a fresh Debian machine, as root, it
# installs (apt-get) and starts what is missing, then waits for it (bounded). Anything it
# cannot fix fails loudly with the reason. When SPINNER_TEST_MYSQL_URL / SPINNER_TEST_MQTT_URL
# point the tests at other servers, those are only checked, never installed or started.
set -euo pipefail

WAIT_SECONDS=${SPINNER_TEST_SERVICES_WAIT:-60}

log() { echo "ensure-test-services: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }

# True when something accepts TCP connections on host:port (bash's /dev/tcp, 2 s at most).
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# Calls "$@" every half second until it succeeds or WAIT_SECONDS pass.
wait_for() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

apt_updated=0
apt_install() {
  is_root || die "$* is missing and installing it needs root: install it yourself, or start the server"
  if [ $apt_updated = 0 ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# host and port of a URL like scheme://user:pw@host:port/db (defaults when absent).
url_host() { local a=${1#*://}; a=${a%%/*}; a=${a##*@}; a=${a%%:*}; echo "${a:-127.0.0.1}"; }
url_port() {
  local a=${1#*://}; a=${a%%/*}; a=${a##*@}
  if [[ $a == *:* ]]; then echo "${a##*:}"; else echo "$2"; fi
}

# ---------------------------------------------------------------- MariaDB
mariadb_tcp_login() { mariadb -uroot -h127.0.0.1 -P3306 --connect-timeout=2 -e 'select 1' >/dev/null 2>&1; }

# Debian's root@localhost logs in by unix socket only: let the tests log in over TCP with an
# empty password too (only called when the TCP login fails).
mariadb_allow_tcp_root() {
  # --force: run every statement even if one fails (e.g. ALTER on a server without unix_socket).
  mariadb -uroot --force --connect-timeout=2 >/dev/null 2>&1 <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
}

mariadb_ready() { mariadb_tcp_login || { mariadb_allow_tcp_root || true; mariadb_tcp_login; }; }

ensure_mariadb() {
  if [ -n "${SPINNER_TEST_MYSQL_URL:-}" ]; then
    local host port
    host=$(url_host "$SPINNER_TEST_MYSQL_URL")
    port=$(url_port "$SPINNER_TEST_MYSQL_URL" 3306)
    port_open "$host" "$port" || die "SPINNER_TEST_MYSQL_URL: nothing answers on $host:$port"
    return 0
  fi
  if ! port_open 127.0.0.1 3306; then
    is_root || die "MariaDB is not running on 127.0.0.1:3306 and starting it needs root"
    [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
    install -d -o mysql -g mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "initialising /var/lib/mysql"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if ! port_open 127.0.0.1 3306; then # apt's postinst may have started it already
      log "starting MariaDB"
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    fi
    wait_for port_open 127.0.0.1 3306 ||
      die "MariaDB did not listen on 127.0.0.1:3306 within ${WAIT_SECONDS}s (see /var/log/mysql or journal)"
  fi
  command -v mariadb >/dev/null || apt_install mariadb-client
  wait_for mariadb_ready ||
    die "MariaDB answers on 127.0.0.1:3306 but 'mariadb -uroot -h127.0.0.1 -e \"select 1\"' fails: root needs an empty password over TCP"
}

# ---------------------------------------------------------------- Mosquitto
ensure_mosquitto() {
  if [ -n "${SPINNER_TEST_MQTT_URL:-}" ]; then
    local host port
    host=$(url_host "$SPINNER_TEST_MQTT_URL")
    port=$(url_port "$SPINNER_TEST_MQTT_URL" 1883)
    port_open "$host" "$port" || die "SPINNER_TEST_MQTT_URL: nothing answers on $host:$port"
    return 0
  fi
  port_open 127.0.0.1 1883 && return 0
  is_root || die "Mosquitto is not running on 127.0.0.1:1883 and starting it needs root"
  [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
  port_open 127.0.0.1 1883 && return 0 # apt's postinst may have started it
  # Our own config: the packaged one may listen elsewhere or refuse anonymous clients.
  local conf
  conf=$(mktemp /tmp/spinner-test-mosquitto.XXXXXX.conf)
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' >"$conf"
  chmod 644 "$conf"
  log "starting Mosquitto"
  /usr/sbin/mosquitto -d -c "$conf"
  wait_for port_open 127.0.0.1 1883 || die "Mosquitto did not listen on 127.0.0.1:1883 within ${WAIT_SECONDS}s"
}

# ---------------------------------------------------------------- Chromium
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  apt_install chromium
  [ -x /usr/bin/chromium ] || die "apt installed chromium but /usr/bin/chromium is missing"
}

ensure_mariadb
ensure_mosquitto
ensure_chromium
log "MariaDB, Mosquitto and Chromium are ready"
