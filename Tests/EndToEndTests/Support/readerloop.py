#!/usr/bin/env python3
"""A browser's view during deploys: fetch index.html, then every asset it names, again and again,
until STOP_FILE exists (or MAX_SECONDS pass). An error is any non-200, or a script that belongs
to another version than the index that named it. Prints one JSON summary."""
import http.client, json, os, re, sys, time

host, port, stop_file, max_seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
stats = {"pages": 0, "assets": 0, "errors": [], "versions": {}}
deadline = time.monotonic() + max_seconds
conn = http.client.HTTPConnection(host, port, timeout=10)

def get(path):
    global conn
    for attempt in (0, 1):
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            if attempt: raise

while not os.path.exists(stop_file) and time.monotonic() < deadline:
    try:
        status, page = get("/")
        stats["pages"] += 1
        m = re.search(r"version: (v\d+)", page)
        if status != 200 or not m:
            stats["errors"].append(f"index: HTTP {status}")
            continue
        version = m.group(1)
        stats["versions"][version] = stats["versions"].get(version, 0) + 1
        for asset in re.findall(r'"(/assets/[^"]+)"', page):
            status, body = get(asset)
            stats["assets"] += 1
            if status != 200:
                stats["errors"].append(f"{asset} (index {version}): HTTP {status}")
            elif asset.endswith(".js") and f"version {version}" not in body:
                stats["errors"].append(f"{asset} (index {version}): a script of another version")
    except Exception as e:
        stats["errors"].append(f"{type(e).__name__}: {e}")
        time.sleep(0.01)
stats["error_count"] = len(stats["errors"])
stats["errors"] = stats["errors"][:10]
print(json.dumps(stats))
