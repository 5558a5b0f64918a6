// A WebSocket client as docs/frameworks.md recommends: on close, reconnect with a backoff and
// resend what the server has not acknowledged. Sends a numbered message every 20 ms until
// STOP_FILE exists, then waits (up to 10 s) for the last acknowledgements and prints a JSON
// summary: sent, acknowledged, lost, reconnects, close codes, releases that answered.
"use strict";
const fs = require("fs");
const WebSocket = require("ws");
const [url, stopFile] = process.argv.slice(2);

let next = 0;
const unacked = new Map();
const stats = { sent: 0, acked: 0, reconnects: 0, closeCodes: {}, releases: {}, errors: [] };
let ws = null;
let backoff = 100;
let stopping = false;

function connect() {
  ws = new WebSocket(url);
  ws.on("open", () => {
    backoff = 100;
    for (const [n, text] of unacked) ws.send(text);  // what the last connection lost
  });
  ws.on("message", (data) => {
    const [release, n] = String(data).split(" ");
    if (unacked.delete(Number(n))) stats.acked += 1;
    stats.releases[release] = (stats.releases[release] || 0) + 1;
  });
  ws.on("close", (code) => {
    stats.closeCodes[code] = (stats.closeCodes[code] || 0) + 1;
    stats.reconnects += 1;
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 2000);
  });
  ws.on("error", (err) => { if (stats.errors.length < 5) stats.errors.push(err.message); });
}

connect();
const sender = setInterval(() => {
  if (fs.existsSync(stopFile)) { finish(); return; }
  const n = next++;
  const text = `${n}`;
  unacked.set(n, text);
  stats.sent += 1;
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
}, 20);

function finish() {
  if (stopping) return;
  stopping = true;
  clearInterval(sender);
  const deadline = Date.now() + 10000;
  const wait = setInterval(() => {
    if (unacked.size === 0 || Date.now() > deadline) {
      clearInterval(wait);
      stats.lost = unacked.size;
      stats.reconnects -= 0;
      console.log(JSON.stringify(stats));
      process.exit(0);
    }
  }, 50);
}
