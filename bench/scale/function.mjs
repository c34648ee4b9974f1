// The function every instance of the scale experiment serves: a plain HTTP server that answers
// each request after 100 ms (FUNCTION_MS), like the Alibaba test function. It does no CPU work, so
// a 2-core machine can run 40 instances of it; what limits an instance is the watchdog's
// max_inflight=1. Listens on UPSTREAM_PORT, which the harness picks per instance.
import { createServer } from 'node:http';

const port = Number(process.env.UPSTREAM_PORT);
const delay = Number(process.env.FUNCTION_MS ?? 100);

const server = createServer((req, res) => {
  req.resume();
  req.once('end', () => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    }, delay);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
