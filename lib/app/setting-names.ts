/**
 * The names of the settings an application knows, and the nearest one to a name it does not:
 * what turns `hostnam` into "unknown setting hostnam: did you mean hostname?".
 */
import { declaredProperties } from './validators.js';

/** Every setting a settings class declares: those with a default and those with a validator. */
export function settingNames(schema: new () => object): string[] {
  return [...new Set([...Object.keys(new schema()), ...declaredProperties(schema)])];
}

/** The edit distance of `a` and `b` (insert, delete, replace, and swap of two neighbours), stopping early past `limit`. */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let twoBack: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (twoBack[j - 2] ?? 0) + 1);
      row.push(d);
      best = Math.min(best, d);
    }
    if (best > limit) return limit + 1;
    twoBack = previous;
    previous = row;
  }
  return Math.min(previous[b.length] ?? 0, limit + 1);
}

/**
 * The known name `name` was most likely meant to be: the same but for case, or the nearest within
 * two edits (one for names of four letters or fewer); `undefined` when none is that near.
 */
export function nearestName(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  const limit = name.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase(), limit);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
