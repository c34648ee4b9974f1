#!/usr/bin/env node
// Started by the pilotlight watchdog; see docs/runtime-protocol.md.
import { runRuntime } from '../dist/main.js';

runRuntime(process.env).catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
