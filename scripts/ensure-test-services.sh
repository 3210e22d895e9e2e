#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up: MariaDB (127.0.0.1:3306, root, empty password),
# Mosquitto (127.0.0.1:1883) and Debian's Chromium for the UI tests. Fast when all are there;
# on a fresh Debian machine, as root, installs and starts what is missing. Fails loudly otherwise.
# SPINNER_TEST_MYSQL_URL / SPINNER_TEST_MQTT_URL point the tests elsewhere (then only checked).
set -euo pipefail

log() { echo "ensure-test-services: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {
  local host=$1 port=$2 what=$3
  for _ in $(seq 1 120); do port_open "$host" "$port" && return 0; sleep 0.5; done
  log "$what did not start listening on $host:$port"; return 1
}
apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then log "need root to install $*; install it or start the server yourself"; exit 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_mariadb() {
  if [ -n "${SPINNER_TEST_MYSQL_URL:-}" ]; then return 0; fi
  if ! port_open 127.0.0.1 3306; then
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { log "installing MariaDB"; apt_install mariadb-server; }
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    wait_port 127.0.0.1 3306 MariaDB
  fi
  for _ in $(seq 1 60); do
    if mariadb -uroot -h127.0.0.1 -e 'select 1' >/dev/null 2>&1; then return 0; fi
    # Debian's root logs in by unix socket only: allow the tests' TCP login with an empty password.
    if mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" 2>/dev/null; then
      continue
    fi
    sleep 0.5
  done
  log "cannot log in to MariaDB as root@127.0.0.1 with an empty password"; return 1
}

ensure_mosquitto() {
  if [ -n "${SPINNER_TEST_MQTT_URL:-}" ]; then return 0; fi
  port_open 127.0.0.1 1883 && return 0
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { log "installing Mosquitto"; apt_install mosquitto; }
  log "starting Mosquitto"
  local conf=/etc/mosquitto/mosquitto.conf
  if ! grep -q '^listener 1883' "$conf" 2>/dev/null; then
    conf=$(mktemp /tmp/spinner-mosquitto-XXXX.conf)
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' > "$conf"
  fi
  /usr/sbin/mosquitto -d -c "$conf"
  wait_port 127.0.0.1 1883 Mosquitto
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  log "installing Debian's chromium (for the Playwright UI tests)"
  apt_install chromium
}

ensure_mariadb
ensure_mosquitto
ensure_chromium
log "MariaDB, Mosquitto and Chromium are ready"
