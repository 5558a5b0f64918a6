// Slipway's preload for Node workers (NODE_OPTIONS=--require <this file>; docs/frameworks.md).
//
// Slipway binds backend.listen itself and hands every worker that socket as fd 3, so that old
// and new workers share one accept queue during a reload. An app written the way Express's
// docs write it, `app.listen(process.env.PORT || 3000)`, would bind PORT itself and fail with
// EADDRINUSE. This module makes a listen() on exactly PORT (a number, a numeric string or
// {port}) take fd 3 instead; every other port, path or handle is left alone.
//
// It also drains such a server on SIGINT/SIGTERM when the app has no handler of its own for
// that signal (Node's default is to die at once, mid-request): stop accepting, answer what is
// in flight with `Connection: close`, close idle keep-alive connections after a short grace,
// then exit. An app with its own handler keeps full control.
//
// It acts only in the process Slipway started (LISTEN_PID is its pid): child processes that
// inherit NODE_OPTIONS are untouched.
"use strict";

const net = require("net");

const port = process.env.PORT;
// fd 3 is the app's shared socket; with LISTEN_FDS=2, fd 4 is this worker's own (health checks).
const fds = Number(process.env.LISTEN_FDS || 0);
const ours = fds >= 1 && process.env.LISTEN_PID === String(process.pid) && /^[0-9]+$/.test(port || "");

if (ours) {
  const originalListen = net.Server.prototype.listen;
  const taken = new Set();
  const idle = new WeakMap();
  // A keep-alive client that sends again within the grace gets its answer with
  // `Connection: close` and moves on cleanly; only a connection idle for the whole grace is
  // closed under it.
  const idleGrace = 1000;
  let draining = false;

  const isAppPort = (value) => (typeof value === "number" || typeof value === "string") && String(value) === port;

  net.Server.prototype.listen = function (...args) {
    const first = args[0];
    let options = null;
    if (isAppPort(first)) {
      options = {};
      // listen(port, [host], [backlog], [callback])
      const backlog = args.slice(1).find((arg) => typeof arg === "number");
      if (backlog !== undefined) options.backlog = backlog;
    } else if (first && typeof first === "object" && !Array.isArray(first) && isAppPort(first.port)
               && first.fd === undefined && first.path === undefined && first.handle === undefined) {
      const { port: _port, host: _host, ipv6Only: _ipv6Only, ...rest } = first;
      options = rest;
    }
    if (!options) return originalListen.apply(this, args);
    const callback = args.find((arg) => typeof arg === "function");
    if (!taken.has(this)) watch(this);
    taken.add(this);
    if (fds >= 2 && !ownSocket) serveOwnSocket(this);
    return originalListen.call(this, { ...options, fd: 3 }, callback);
  };

  // The worker's own socket (fd 4) feeds its connections to the same server.
  let ownSocket = null;
  function serveOwnSocket(server) {
    ownSocket = net.createServer({ pauseOnConnect: false }, (socket) => server.emit("connection", socket));
    ownSocket.on("error", (err) => console.error("slipway preload: fd 4:", err.message));
    originalListen.call(ownSocket, { fd: 4 });
  }

  function closeWhenIdle(socket) {
    setTimeout(() => { if (idle.get(socket) && !socket.destroyed) socket.destroy(); }, idleGrace).unref();
  }

  // Every connection, and whether it is between requests, so a drain can close idle ones.
  function watch(server) {
    server.connections = new Set();
    server.on("connection", (socket) => {
      server.connections.add(socket);
      idle.set(socket, true);
      socket.once("close", () => server.connections.delete(socket));
      if (draining) closeWhenIdle(socket);
    });
    // First in line, so the header is set before the app's handler answers.
    server.prependListener("request", (req, res) => {
      const socket = req.socket;
      idle.set(socket, false);
      if (draining) res.setHeader("Connection", "close");
      res.on("finish", () => {
        idle.set(socket, true);
        if (draining) closeWhenIdle(socket);
      });
    });
  }

  function drain(signal) {
    // The app listens for this signal itself: it decides how to stop.
    if (process.listenerCount(signal) > 1 || draining) return;
    draining = true;
    if (ownSocket && ownSocket.listening) ownSocket.close();
    const servers = [...taken].filter((server) => server.listening);
    if (servers.length === 0) process.exit(0);
    let open = servers.length;
    for (const server of servers) {
      // http.Server.close() would end idle keep-alive connections at once (Node 19+), as a
      // client may be sending on them: they get the grace instead.
      server.closeIdleConnections = () => {};
      server.close(() => { if (--open === 0) process.exit(0); });
      for (const socket of server.connections) if (idle.get(socket)) closeWhenIdle(socket);
    }
  }

  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => drain(signal));
}
