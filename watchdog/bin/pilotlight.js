#!/usr/bin/env -S node --no-flush-bytecode --no-lazy
// The container entrypoint. Kept as plain JS so it runs without a build step of its own.
// --no-flush-bytecode keeps the warm-up's compiled code through a long idle wait (see
// runners/create.ts), and --no-lazy compiles every function the watchdog loads at start, so the
// paths a specialization runs for the first time are not compiled while it waits
// (docs/architecture.md). Started as `node pilotlight.js`, pass them yourself, as the image does.
import { main } from '../dist/main.js';

main(process.env, process.argv.slice(2));
