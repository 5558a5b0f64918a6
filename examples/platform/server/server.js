// The platform backend. Slipway builds and publishes it; running it as workers comes with the supervisor.
const http = require("http");
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => {
  res.setHeader("X-Release", process.env.SLIPWAY_RELEASE || "unknown");
  res.end(JSON.stringify({ ok: true }) + "\n");
}).listen(port, "127.0.0.1");
