// The platform backend, as Slipway runs it: one of N workers sharing the socket the agent
// owns (fd 3, systemd socket activation), ready when it says so (READY=1 on NOTIFY_SOCKET),
// draining on SIGINT/SIGTERM, with sessions kept in Redis so a reload logs nobody out.
// Uses Debian's node-express and node-redis (NODE_PATH=/usr/share/nodejs; no npm registry).
"use strict";
const { execFile } = require("child_process");
const crypto = require("crypto");
const express = require("express");

const release = process.env.SLIPWAY_RELEASE || "dev";
const sessionTTL = 3600;

if (process.env.CRASH_AT_START === "1") {
  console.error("CRASH_AT_START=1: exiting before serving");
  process.exit(3);
}

// Sessions live in Redis, never in a worker: any worker of any release can read them.
let redis = null;
async function connectRedis() {
  if (!process.env.REDIS_URL) return;
  const { createClient } = require("redis");
  redis = createClient({ url: process.env.REDIS_URL });
  redis.on("error", (err) => console.error("redis:", err.message));
  await redis.connect();
}

const app = express();
app.disable("x-powered-by");
app.use((req, res, next) => {
  res.setHeader("X-Release", release);
  if (draining) res.setHeader("Connection", "close"); // a keep-alive client moves to another worker
  next();
});

app.get("/api/health", (req, res) => res.json({ ok: true, release }));
app.get("/api/hello", (req, res) =>
  res.json({ release, pid: process.pid, greeting: process.env.GREETING || "hello" }));
app.get("/api/slow", (req, res) => setTimeout(() => res.json({ release, slow: true }), Number(req.query.ms || 500)));

function sessionId(req) {
  const match = /(?:^|;\s*)sid=([0-9a-f]{32})/.exec(req.headers.cookie || "");
  return match ? match[1] : null;
}
app.post("/api/session", express.json(), async (req, res, next) => {
  try {
    if (!redis) return res.status(503).json({ error: "sessions need REDIS_URL" });
    const sid = crypto.randomBytes(16).toString("hex");
    const user = (req.body && req.body.user) || "guest";
    await redis.set(`sess:${sid}`, JSON.stringify({ user, created: Date.now(), release }), { EX: sessionTTL });
    res.setHeader("Set-Cookie", `sid=${sid}; HttpOnly; Path=/; Max-Age=${sessionTTL}`);
    res.status(201).json({ user, release });
  } catch (err) { next(err); }
});
app.get("/api/session", async (req, res, next) => {
  try {
    if (!redis) return res.status(503).json({ error: "sessions need REDIS_URL" });
    const sid = sessionId(req);
    const data = sid && (await redis.get(`sess:${sid}`));
    if (!data) return res.status(401).json({ error: "no session" });
    res.json({ ...JSON.parse(data), servedBy: release });
  } catch (err) { next(err); }
});

let draining = false;
let server;
let sockets = null;

// WebSockets on /api/ws (Debian's node-ws), echoing with the release that answered.
function serveWebSockets() {
  let WebSocketServer;
  try { ({ WebSocketServer } = require("ws")); } catch { return; }
  sockets = new WebSocketServer({ server, path: "/api/ws" });
  sockets.on("connection", (ws) => ws.on("message", (data) => ws.send(`echo from ${release}: ${data}`)));
}

function notifyReady() {
  if (!process.env.NOTIFY_SOCKET) return;
  // Node has no unix datagram sockets; systemd-notify sends READY=1 for us. Slipway gives
  // each worker its own notify socket, so the helper's own pid does not matter.
  // READY_STATUS overrides the status text (the tests send hostile escape sequences through it).
  const status = process.env.READY_STATUS || `serving ${release}`;
  execFile("systemd-notify", ["--ready", `--status=${status}`], (err) => {
    if (err) console.error("systemd-notify failed:", err.message);
  });
}

function drain(signal) {
  if (draining) return;
  draining = true;
  console.log(`${signal}: draining`);
  if (process.env.IGNORE_STOP === "1") { console.log("IGNORE_STOP=1: not stopping"); return; }
  if (sockets) sockets.clients.forEach((ws) => ws.close(1001, "server restarting"));
  if (own) own.close();
  server.close(() => {
    if (redis) redis.quit().catch(() => {});
    console.log("drained, exiting");
    process.exit(0);
  });
  // Idle keep-alive connections would hold close() open; busy ones get Connection: close.
  server.closeIdleConnections();
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  idle.unref();
}
process.on("SIGINT", () => drain("SIGINT"));
process.on("SIGTERM", () => drain("SIGTERM"));

// fd 3 is the app's socket, shared by every worker; with health.path, fd 4 is this worker's
// own, where Slipway checks it (LISTEN_FDS=2). Serving both is one line.
let own = null;
connectRedis().then(() => {
  const fds = Number(process.env.LISTEN_FDS || 0);
  server = app.listen(fds >= 1 ? { fd: 3 } : { port: Number(process.env.PORT || 3000), host: "127.0.0.1" }, () => {
    console.log(`serving release ${release} (pid ${process.pid})`);
    notifyReady();
  });
  if (fds >= 2 && process.env.SERVE_ONLY_FD3 !== "1") own = require("http").createServer(app).listen({ fd: 4 });
  server.keepAliveTimeout = 5000;
  serveWebSockets();
}).catch((err) => {
  console.error("cannot start:", err.message);
  process.exit(1);
});
