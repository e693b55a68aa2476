#!/usr/bin/env bash
# A throwaway PostgreSQL server for the distributed-search tests (tests/test_distributed.py) and
# for trying docs/scaling-out.md on one machine. PostgreSQL comes from Debian's packages.
#
#   bash .ci/postgres.sh install                    install PostgreSQL when it is missing (root: apt-get)
#   bash .ci/postgres.sh start DIR PORT USER PASSWORD DB
#                                                   new cluster in DIR (must be empty or absent), listening
#                                                   on 127.0.0.1:PORT, with a database DB owned by USER
#                                                   (password auth); prints the storage URL without the
#                                                   password (give it with PGPASSWORD or in the URL)
#   bash .ci/postgres.sh stop DIR                   stop that cluster and delete DIR
#
# PostgreSQL refuses to run as root: as root the cluster is owned by and run as the `postgres` user
# (created by the Debian package). Durability is off (fsync, synchronous_commit): the data is thrown away.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
  # Debian keeps the server tools out of PATH, in /usr/lib/postgresql/<version>/bin; take the newest.
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$found" && -x "$found/initdb" ]]; then echo "$found"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

as_owner() {
  # Run a server tool as the cluster's owner: `postgres` when we are root, ourselves otherwise.
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  if bindir >/dev/null; then echo "PostgreSQL found in $(bindir)"; return; fi
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed; as root run: apt-get update && apt-get install -y postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  # The package creates and starts a default cluster on port 5432; the tests use their own clusters.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /usr/lib/postgresql); do pg_ctlcluster "$version" main stop 2>/dev/null || true; done
  fi
  echo "PostgreSQL installed in $(bindir)"
}

start() {
  local dir=$1 port=$2 user=$3 password=$4 db=$5 bin
  bin=$(bindir) || die "PostgreSQL is not installed: run bash .ci/postgres.sh install"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no postgres user to run the server as (PostgreSQL refuses root)"
    chown postgres: "$dir"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { cat "$dir/server.log" >&2; die "the server did not start"; }
  as_owner "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
    -v user="$user" -v db="$db" -v password="$password" >/dev/null <<'SQL'
CREATE ROLE :"user" LOGIN CREATEDB PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
  echo "postgresql+psycopg2://$user@127.0.0.1:$port/$db"
}

stop() {
  local dir=$1 bin
  bin=$(bindir) || die "PostgreSQL is not installed"
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) [[ $# -eq 6 ]] || die "usage: start DIR PORT USER PASSWORD DB"; start "$2" "$3" "$4" "$5" "$6" ;;
  stop) [[ $# -eq 2 ]] || die "usage: stop DIR"; stop "$2" ;;
  *) die "usage: postgres.sh install | start DIR PORT USER PASSWORD DB | stop DIR" ;;
esac
