#!/usr/bin/env node
// The container entrypoint. Kept as plain JS so it runs without a build step of its own.
import { main } from '../dist/main.js';

main(process.env, process.argv.slice(2));
