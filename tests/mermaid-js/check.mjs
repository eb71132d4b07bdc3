// Parses each .mmd file given on the command line with mermaid's own parser and prints, as one
// JSON array on stdout, whether it parsed and the graph mermaid built: vertices (id, decoded
// label, shape type, styles), edges (from, to, decoded label, type), subgraphs (id, decoded
// title, member nodes). Labels are decoded the way mermaid shows them: `<br>` variants become
// "\n", `#quot;` and `#NNN;` entities become characters.
//
// Usage: node check.mjs FILE.mmd...
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

const NAMED = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'", nbsp: '\u00a0', num: '#' };

function decode(text) {
  if (text === undefined || text === null) return null;
  return String(text)
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/ﬂ°°(\d+)¶ß/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/ﬂ°(\w+)¶ß/g, (m, name) => (name in NAMED ? NAMED[name] : `#${name};`));
}

const results = [];
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  try {
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const db = diagram.db;
    const vertices = [...db.getVertices().values()].map((v) => ({
      id: v.id,
      label: decode(v.text),
      type: v.type ?? null,
      styles: v.styles ?? [],
      classes: v.classes ?? [],
    }));
    const edges = db.getEdges().map((e) => ({
      from: e.start,
      to: e.end,
      label: e.text ? decode(e.text) : null,
      type: e.type,
    }));
    const subgraphs = db.getSubGraphs().map((s) => ({ id: s.id, title: decode(s.title), nodes: s.nodes }));
    results.push({ file, ok: true, vertices, edges, subgraphs });
  } catch (error) {
    results.push({ file, ok: false, error: String(error?.message ?? error) });
  }
}
process.stdout.write(JSON.stringify(results));
