/** FER+ (Barsoum et al. 2016): ten crowd votes per image over these classes. */
export const FERPLUS_VOTE_CLASSES = ['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF'] as const;

/**
 * The vote columns of a header (lower-cased names): either `neutral, happiness, ...` as in FER+'s fer2013new.csv or
 * `votes_neutral, ...`. Returns class -> column, or undefined when the header has no complete set.
 */
export function voteColumns(lowerHeader: readonly string[]): Record<string, string> | undefined {
  for (const prefix of ['votes_', '']) {
    const cols: Record<string, string> = {};
    let ok = true;
    for (const c of FERPLUS_VOTE_CLASSES) {
      const name = (prefix + c).toLowerCase();
      if (!lowerHeader.includes(name)) ok = false;
      cols[c] = name;
    }
    if (ok) return cols;
  }
  return undefined;
}

/**
 * The FER+ majority label as the FER+ authors define it: drop every class with a single vote, take the class with
 * the most remaining votes; none when that maximum is tied, or is unknown / NF (not a face). Contempt has no
 * FER2013 counterpart: it is a label only when the dataset keeps contempt, else none.
 */
export function ferPlusMajority(votes: Record<string, number>, withContempt: boolean): string | null {
  let best: string | null = null;
  let bestVotes = 0;
  let tied = false;
  for (const c of FERPLUS_VOTE_CLASSES) {
    const v = votes[c] ?? 0;
    if (v <= 1) continue;
    if (v > bestVotes) {
      best = c;
      bestVotes = v;
      tied = false;
    } else if (v === bestVotes) {
      tied = true;
    }
  }
  if (best === null || tied || best === 'unknown' || best === 'NF') return null;
  if (best === 'contempt' && !withContempt) return null;
  return best;
}
