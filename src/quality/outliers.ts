/**
 * Outliers in embedding space: images far from every class. Each class is the mean direction of its images' unit
 * embeddings (given labels, expression classes only); an image's distance is 1 - its largest cosine to a class mean.
 */

/**
 * Unit class means of unit rows: row i counts for class labels[i] (>= 0; -1 = not counted). A class with no row is a
 * zero vector (never nearest).
 */
export function classMeans(unit: Float32Array, dim: number, labels: Int32Array, classes: number): Float32Array {
  const means = new Float32Array(classes * dim);
  labels.forEach((c, i) => {
    if (c < 0) return;
    for (let k = 0; k < dim; k++) means[c * dim + k]! += unit[i * dim + k]!;
  });
  for (let c = 0; c < classes; c++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += means[c * dim + k]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) means[c * dim + k]! *= inv;
  }
  return means;
}

/** 1 - max over classes of cos(row, class mean), per row: 0 on a class mean, up to 2 opposite every class. */
export function distanceToClasses(unit: Float32Array, dim: number, means: Float32Array): Float32Array {
  const n = unit.length / dim;
  const classes = means.length / dim;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += unit[i * dim + k]! * means[c * dim + k]!;
      if (s > best) best = s;
    }
    out[i] = 1 - best;
  }
  return out;
}
