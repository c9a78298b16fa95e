#!/usr/bin/env node
// Committed shim so the workspace bin link exists before the first build.
import '../dist/bin.js';
