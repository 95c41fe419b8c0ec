/** The most likely class of row i of a row-major [N, C] probability table (the first one on ties). */
export function argmax(p: ArrayLike<number>, i: number, C: number): number {
  let best = 0;
  for (let c = 1; c < C; c++) if (p[i * C + c]! > p[i * C + best]!) best = c;
  return best;
}
