#!/usr/bin/env node
// Validate Mermaid diagram files with mermaid's own parser.
//
//   npm ci --prefix tests/tools
//   node tests/tools/check-mermaid.mjs [--max-edges=N] FILE... ('-' = stdin)
//
// Prints `ok FILE` for each file that parses and `error FILE: MESSAGE` for
// each that does not (empty files and a `false` result from the parser count
// as errors). Every file is checked; the exit status is 1 if any failed,
// 2 on a usage error, 0 otherwise.
//
// For gantt charts it also runs mermaid's own task scheduling (db.getTasks(),
// what the renderer calls first), which catches task lines that parse but
// cannot be laid out, e.g. a tag such as `crit` placed after the task id.
//
// --max-edges=N raises mermaid's flowchart edge limit (default 500, a
// "secure" setting that a diagram cannot raise for itself).

import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const USAGE = 'usage: node tests/tools/check-mermaid.mjs [--max-edges=N] FILE... (- for stdin)';
const files = [];
let maxEdges;
for (const arg of process.argv.slice(2)) {
  const m = /^--max-edges=(\d+)$/.exec(arg);
  if (m) {
    maxEdges = Number(m[1]);
  } else if (arg === '-h' || arg === '--help' || (arg.startsWith('-') && arg !== '-')) {
    console.error(USAGE);
    process.exit(2);
  } else {
    files.push(arg);
  }
}
if (files.length === 0) {
  console.error(USAGE);
  process.exit(2);
}

// mermaid sanitizes labels with DOMPurify, which needs a DOM. DOMPurify binds
// to `globalThis.window` when its module is first evaluated, so the globals
// must exist before mermaid (and dompurify) are imported: hence the dynamic
// imports below.
const dom = new JSDOM('<!DOCTYPE html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: DOMPurify } = await import('dompurify');
if (typeof DOMPurify.addHook !== 'function' || !DOMPurify.isSupported) {
  console.error('check-mermaid: DOMPurify did not bind to the jsdom window');
  process.exit(2);
}
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, ...(maxEdges === undefined ? {} : { maxEdges }) });

function readInput(file) {
  return readFileSync(file === '-' ? 0 : file, 'utf8');
}

let failed = 0;
for (const file of files) {
  const name = file === '-' ? '<stdin>' : file;
  let problem = null;
  try {
    const text = readInput(file);
    if (text.trim() === '') {
      problem = 'file is empty';
    } else {
      const result = await mermaid.parse(text);
      if (result === false || result == null) {
        problem = 'mermaid parser returned false';
      } else if (result.diagramType === 'gantt') {
        const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
        diagram.db.getTasks();
      }
    }
  } catch (err) {
    problem = (err && (err.message || err.str)) || String(err);
  }
  if (problem === null) {
    console.log(`ok ${name}`);
  } else {
    failed += 1;
    console.log(`error ${name}: ${problem}`);
  }
}

dom.window.close();
process.exitCode = failed > 0 ? 1 : 0;
