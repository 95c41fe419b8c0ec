/**
 * Groups of duplicate images from pairs: byte-identical files (same sha256) and near pairs (embedding cosine at a
 * candidate level confirmed by pixel correlation, or a very high cosine alone). Groups are connected components
 * (union-find): a chain a~b~c is one group even when a and c alone would not pair.
 */

export interface DuplicatePair {
  i: number;
  j: number;
  /** Embedding cosine (1 for byte-identical files). */
  cos: number;
  /** Aligned pixel correlation, null for byte-identical files. */
  pixel: number | null;
  exact: boolean;
}

export interface PairGroup {
  /** Row indices, ascending. */
  members: number[];
  kind: 'exact' | 'near';
  /** Lowest cosine among the pairs that joined it. */
  similarity: number;
  /** Lowest pixel correlation among its near pairs; null when all pairs are byte-identical. */
  pixelSimilarity: number | null;
}

/** Connected components of `pairs` over n rows, each with its kind and lowest similarities; largest groups first. */
export function groupPairs(n: number, pairs: readonly DuplicatePair[]): PairGroup[] {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (const p of pairs) {
    const a = find(p.i);
    const b = find(p.j);
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  }
  const byRoot = new Map<number, { members: Set<number>; cos: number; pixel: number | null; near: boolean }>();
  for (const p of pairs) {
    const r = find(p.i);
    let g = byRoot.get(r);
    if (!g) byRoot.set(r, (g = { members: new Set(), cos: 1, pixel: null, near: false }));
    g.members.add(p.i).add(p.j);
    g.cos = Math.min(g.cos, p.cos);
    if (!p.exact) {
      g.near = true;
      g.pixel = Math.min(g.pixel ?? 1, p.pixel ?? 1);
    }
  }
  return [...byRoot.values()]
    .map((g) => ({
      members: [...g.members].sort((a, b) => a - b),
      kind: g.near ? ('near' as const) : ('exact' as const),
      similarity: g.cos,
      pixelSimilarity: g.pixel,
    }))
    .sort((a, b) => b.members.length - a.members.length || a.members[0]! - b.members[0]!);
}
