#!/usr/bin/env bash
# Starts a private PostgreSQL 15 cluster for the tests and exports
# OTELPATTERNS_PG_DSN, the database the pgjournal tests use, and
# OTELPATTERNS_PG_CTL, the pg_ctl command line that restarts it. Source it:
#
#	. scripts/postgres.sh    # then: bash scripts/test.sh
#
# The cluster lives in a temporary directory, listens on 127.0.0.1 on a
# free port, and is stopped and removed when the sourcing shell exits. It
# installs Debian's postgresql-15 if it is missing (as root). Any step that
# fails fails the script: CI must not skip the tests silently.

pg_bin=/usr/lib/postgresql/15/bin

pg_fail() {
	echo "scripts/postgres.sh: $*" >&2
	return 1
}

pg_start() {
	if [ ! -x "$pg_bin/initdb" ]; then
		[ "$(id -u)" = 0 ] || { pg_fail "PostgreSQL 15 is not installed ($pg_bin/initdb): apt-get install postgresql-15"; return 1; }
		echo "== installing postgresql-15"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null ||
			{ pg_fail "apt-get install postgresql-15 failed"; return 1; }
	fi
	# initdb refuses to run as root: the server runs as postgres.
	local run=()
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres ||
			{ pg_fail "no postgres user"; return 1; }
		run=(runuser -u postgres --)
	fi
	PG_DIR=$(mktemp -d /tmp/otelpatterns-pg.XXXXXX) || return 1
	[ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
	local port
	for port in $(seq 55432 55532); do
		(: </dev/tcp/127.0.0.1/$port) 2>/dev/null || break
	done
	PG_PORT=$port
	echo "== PostgreSQL 15: a private cluster in $PG_DIR on 127.0.0.1:$PG_PORT"
	"${run[@]}" "$pg_bin/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log" >&2; pg_fail "initdb failed"; return 1; }
	"${run[@]}" "$pg_bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200" start >/dev/null ||
		{ cat "$PG_DIR/server.log" >&2; pg_fail "the server did not start"; return 1; }
	trap pg_stop EXIT
	local psql=("${run[@]}" "$pg_bin/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
	"${psql[@]}" -d postgres -c "CREATE ROLE otelpatterns LOGIN PASSWORD 'otelpatterns'" &&
		"${psql[@]}" -d postgres -c "CREATE DATABASE otelpatterns OWNER otelpatterns" ||
		{ pg_fail "creating the role and the database failed"; return 1; }
	export OTELPATTERNS_PG_DSN="postgres://otelpatterns:otelpatterns@127.0.0.1:$PG_PORT/otelpatterns?sslmode=disable"
	# How a test restarts the server mid-load (pg_ctl restart keeps the options above).
	export OTELPATTERNS_PG_CTL="${run[*]} $pg_bin/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log"
	# Wait until the server accepts the test role's connections over TCP.
	local i
	for i in $(seq 1 60); do
		if PGPASSWORD=otelpatterns "$pg_bin/psql" "$OTELPATTERNS_PG_DSN" -qAtc 'SELECT 1' >/dev/null 2>&1; then
			echo "== PostgreSQL accepts connections: OTELPATTERNS_PG_DSN=$OTELPATTERNS_PG_DSN"
			return 0
		fi
		sleep 1
	done
	pg_fail "the server does not accept connections as otelpatterns after 60 s"
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	local run=()
	[ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
	"${run[@]}" "$pg_bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
	PG_DIR=
}

pg_start
