/**
 * A small seeded pseudo-random generator (mulberry32) so that every random choice of a run (weight init,
 * shuffling, dropout masks, synthetic noise) is reproducible from one integer seed, whatever the backend.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    // Mix the seed so that nearby seeds give unrelated streams.
    this.state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform 32-bit unsigned integer (the generator's raw output; next() is this / 2^32). */
  uint32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A child generator with its own stream (e.g. one per purpose), derived deterministically. */
  fork(salt: number): Rng {
    return new Rng((Math.floor(this.next() * 0x7fffffff) ^ Math.imul(salt, 0x27d4eb2d)) >>> 0);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place; returns its argument. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }
}

/** 0..n-1 in a seeded random order. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return rng.shuffle(p);
}
