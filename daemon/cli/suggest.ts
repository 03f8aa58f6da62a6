/**
 * "Did you mean …?" for a mistyped command or option: the known words closest to what was typed by
 * edit distance (Levenshtein: insertions, deletions, substitutions; a swap of two neighbours counts
 * one, as in Damerau's variant), within a third of the word's length.
 */

/** Edit distance between `a` and `b` (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidates nearest to `typed` (ties all kept, in the candidates' order); none when nothing is close. */
export function closest(typed: string, candidates: readonly string[]): string[] {
  const limit = Math.max(1, Math.floor(typed.length / 3));
  let best = Infinity;
  let found: string[] = [];
  for (const candidate of candidates) {
    // a prefix ("stat" for "status") is as good as a typo
    const distance = candidate.startsWith(typed) && typed.length >= 3 ? 1 : editDistance(typed.toLowerCase(), candidate.toLowerCase());
    if (distance > limit || distance > best) continue;
    if (distance < best) found = [];
    best = distance;
    found.push(candidate);
  }
  return found;
}

/** ' Did you mean "status"?' (or "a" or "b"), or '' when nothing is close. */
export function didYouMean(typed: string, candidates: readonly string[]): string {
  const found = closest(typed, candidates);
  if (found.length === 0) return '';
  return ` Did you mean ${found.map((c) => `"${c}"`).join(' or ')}?`;
}
