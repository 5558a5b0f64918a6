#!/bin/sh
# migrate.sh expand|contract|check: a small migration runner over psql, for Slipway's
# migrate steps (it runs them in the release's backend directory with the app's env).
#
# migrations/NNN_name.sql and NNN_name.expand.sql are expand steps: they only add, so the
# running code keeps working. migrations/NNN_name.contract.sql are contract steps: they remove
# what the new code no longer reads. Each file runs once, in one transaction, under an advisory
# lock, and is recorded in schema_migrations: running a step twice, or on two hosts at once,
# is harmless. `check` exits 0 once every expand step of this release is recorded (a host that
# does not migrate waits on it before its switch).
set -eu
step=${1:?usage: migrate.sh expand|contract|check}
: "${DATABASE_URL:?DATABASE_URL is not set; put it in the app's env_file}"
cd "$(dirname "$0")"
lock=7420

sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }

files() {
    for file in migrations/*.sql; do
        [ -e "$file" ] || continue
        case "$file" in
            *.contract.sql) [ "$1" = contract ] && echo "$file" ;;
            *) [ "$1" = expand ] && echo "$file" ;;
        esac
    done
    return 0
}

case "$step" in
    expand|contract)
        sql -1 -f - <<SQL
\o /dev/null
SELECT pg_advisory_xact_lock($lock);
CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp());
SQL
        for file in $(files "$step"); do
            name=$(basename "$file" .sql)
            sql -1 -v name="$name" -f - <<SQL
\o /dev/null
SELECT pg_advisory_xact_lock($lock);
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE name = :'name') AS pending \gset
\if :pending
\echo applying $name
\i $file
INSERT INTO schema_migrations (name) VALUES (:'name');
\endif
SQL
        done
        ;;
    check)
        # Read-only and lock-free: it never waits behind a running expand, it reports it.
        if [ "$(sql -tA -c "SELECT to_regclass('schema_migrations') IS NOT NULL")" != t ]; then
            echo "waiting for the first migration"
            exit 1
        fi
        for file in $(files expand); do
            name=$(basename "$file" .sql)
            applied=$(sql -tA -v name="$name" -c "SELECT count(*) FROM schema_migrations WHERE name = '$name'")
            if [ "$applied" != 1 ]; then
                echo "waiting for migration $name"
                exit 1
            fi
        done
        ;;
    *)
        echo "unknown step '$step': use expand, contract or check" >&2
        exit 2
        ;;
esac
