"""The catalog example: a WSGI app (Debian's gunicorn + psycopg2) on PostgreSQL, deployed by
Slipway with expand/contract migrations (see migrate.sh and migrations/).

This version reads and writes items.title. Version 1 used items.name; migration 002 renamed
it in two steps: its expand adds title (kept equal to name by a trigger, so old and new
workers can serve side by side during the rolling reload), its contract drops name once every
worker runs this version.
"""
import json
import os

import psycopg2

COLUMN = "title"
RELEASE = os.environ.get("SLIPWAY_RELEASE", "dev")
_connection = None


def query(sql, args=()):
    """One statement on this process's connection, reconnecting once if it was lost."""
    global _connection
    for attempt in (1, 2):
        try:
            if _connection is None or _connection.closed:
                _connection = psycopg2.connect(os.environ["DATABASE_URL"])
                _connection.autocommit = True
            with _connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall() if cursor.description else []
        except psycopg2.OperationalError:
            _connection = None
            if attempt == 2:
                raise


# A worker refuses to start on a schema that lacks what it reads: a failed reload (the old
# workers keep serving) is better than errors on every request.
query(f"SELECT id, {COLUMN} FROM items LIMIT 0")


def respond(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("X-Release", RELEASE),
                            ("Content-Length", str(len(data)))])
    return [data]


def app(environ, start_response):
    path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
    try:
        if path == "/api/health":
            query("SELECT 1")
            return respond(start_response, "200 OK", {"ok": True, "release": RELEASE})
        if path == "/api/items" and method == "GET":
            rows = query(f"SELECT id, {COLUMN} FROM items ORDER BY id LIMIT 20")
            return respond(start_response, "200 OK", {"release": RELEASE, "items": [{"id": i, COLUMN: t} for i, t in rows]})
        if path == "/api/items" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            text = json.loads(environ["wsgi.input"].read(length) or b"{}").get(COLUMN, "")
            (row,) = query(f"INSERT INTO items ({COLUMN}) VALUES (%s) RETURNING id", (text,))
            return respond(start_response, "201 Created", {"id": row[0]})
        return respond(start_response, "404 Not Found", {"error": "no such route"})
    except psycopg2.Error as error:
        return respond(start_response, "500 Internal Server Error", {"error": str(error).strip()})
