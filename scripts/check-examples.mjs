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

const missing = (project.children ?? []).filter((r) => !hasExample(r)).map((r) => r.name);
if (missing.length > 0) {
  console.error(`exports without an @example (${missing.length}): ${missing.sort().join(', ')}`);
  process.exit(1);
}
console.log(`every one of ${project.children.length} exports has an @example`);
