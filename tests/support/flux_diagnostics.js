// Reads a JSON array of Flux texts on stdin and prints a JSON array with, per text, the
// diagnostics of InfluxData's own language server (libflux compiled to WASM: parser and
// semantic checker against the real standard library). Usage:
//   node flux_diagnostics.js <node_modules directory holding @influxdata/flux-lsp-node>
// Installed by ensure_flux_lsp in scripts/toolchain.sh; used by tests/api/test_flux_lsp.py.
"use strict";
const path = require("path");

const modules = process.argv[2];
// The WASM module logs through console.log; stdout carries only the JSON answer.
for (const level of ["log", "info", "debug", "warn"]) {
  console[level] = (...args) => process.stderr.write(`${args.join(" ")}\n`);
}
const { Lsp } = require(path.join(modules, "@influxdata/flux-lsp-node"));

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

async function main() {
  const texts = JSON.parse(await readStdin());
  const lsp = new Lsp();
  // The server publishes for every open document; only the first publication for the
  // document just opened is its own check.
  let waiting = null;
  lsp.onMessage((raw) => {
    const message = JSON.parse(raw);
    if (
      waiting !== null &&
      message.method === "textDocument/publishDiagnostics" &&
      message.params.uri === waiting.uri
    ) {
      const done = waiting;
      waiting = null;
      done.resolve(message.params.diagnostics);
    }
  });
  lsp.run().catch((err) => {
    process.stderr.write(`flux-lsp stopped: ${err}\n`);
    process.exit(2);
  });
  let id = 0;
  const request = (method, params) =>
    lsp.send(JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }));
  const notify = (method, params) => lsp.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  await request("initialize", { processId: null, rootUri: null, capabilities: {} });
  await notify("initialized", {});
  const results = [];
  for (const [index, text] of texts.entries()) {
    const uri = `file:///query-${index}.flux`;
    const published = new Promise((resolve) => {
      waiting = { uri, resolve };
    });
    await notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "flux", version: 1, text },
    });
    const diagnostics = await published;
    results.push(
      diagnostics.map((d) => ({
        message: d.message,
        line: d.range.start.line + 1,
        character: d.range.start.character + 1,
        severity: d.severity,
      })),
    );
    await notify("textDocument/didClose", { textDocument: { uri } });
  }
  // The server never stops by itself; exit once the answer is flushed (a pipe writes late).
  process.stdout.write(JSON.stringify(results), () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
