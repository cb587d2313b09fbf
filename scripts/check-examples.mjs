// Fails when an export of the public API has no @example in its TSDoc. Reads typedoc's JSON.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node scripts/check-examples.mjs docs/api.json');
  process.exit(2);
}
const project = JSON.parse(readFileSync(file, 'utf8'));

function hasExample(reflection) {
  const comments = [reflection.comment, ...(reflection.signatures ?? []).map((s) => s.comment)];
  return comments.some((c) => c?.blockTags?.some((t) => t.tag === '@example'));
}

// With several entry points (sirocco, sirocco/outbound, …) the project's children are modules (kind 2).
const MODULE = 2;
const modules = (project.children ?? []).some((r) => r.kind === MODULE) ? project.children : [project];
const exports = modules.flatMap((m) => (m.children ?? []).map((r) => ({ name: m === project ? r.name : `${m.name}: ${r.name}`, r })));
const missing = exports.filter(({ r }) => !hasExample(r)).map(({ name }) => name);
if (missing.length > 0) {
  console.error(`exports without an @example (${missing.length}): ${missing.sort().join(', ')}`);
  process.exit(1);
}
console.log(`every one of ${exports.length} exports of ${modules.length} entry points has an @example`);
