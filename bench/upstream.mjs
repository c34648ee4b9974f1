// The trivial function every proxy-overhead target serves: a node:http server answering
// "hello world" as text/plain on every path. PORT (default 3000) picks the port.
import { createServer } from 'node:http';

const body = Buffer.from('hello world');
const port = Number(process.env.PORT ?? 3000);

const server = createServer((req, res) => {
  // Drain any request body so keep-alive connections stay usable.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
