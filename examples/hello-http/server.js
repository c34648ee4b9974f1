// A plain HTTP function: any server works in `http` mode. The watchdog starts it, waits until it
// answers and proxies to it. It listens on UPSTREAM_PORT (3000 by default), not PORT, because
// PORT is the watchdog's own port on Knative.
import { createServer } from 'node:http';

const port = Number(process.env.UPSTREAM_PORT ?? 3000);

const server = createServer((req, res) => {
  const name = req.headers.name ?? 'world';
  console.log(JSON.stringify({ msg: 'function is running', name, path: req.url }));
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`hello ${name}\n`);
});

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
