/** Text rendering of a run's scores for the terminal (the library builds lines; the CLI prints them). */
import type { RunReport } from './metrics.js';

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null, d = 3): string => (x === null ? '-' : x.toFixed(d));
const int = (n: number): string => n.toLocaleString('en-US');

/** A few lines: what ran, test accuracy, detection. */
export function formatReportSummary(r: RunReport): string[] {
  const noise = r.noise_rate > 0 ? `, ${int(Math.round(r.noise_rate * 100))}% ${r.noise_type} noise` : '';
  const lines = [
    `run ${r.run_id}: ${r.method} on ${r.backbone} (${r.backend}), labels ${r.label_source}${noise}, seed ${r.seed}, ` +
      `${r.epochs} epochs, ${r.duration_s === null ? '-' : r.duration_s.toFixed(1)} s, ${int(r.train_images)} training images`,
  ];
  const acc: string[] = [];
  if (r.test_accuracy_reference !== null) acc.push(`${pct(r.test_accuracy_reference)} against the reference labels`);
  if (r.test_accuracy_given !== null) acc.push(`${pct(r.test_accuracy_given)} against the given labels`);
  lines.push(acc.length ? `test accuracy (${int(r.test_images)} images): ${acc.join(', ')}` : 'test accuracy: no test images');
  const d = r.detection;
  if (d) {
    const against = d.truth === 'synthetic' ? 'injected flips' : 'reference labels that differ from the given ones';
    lines.push(
      `noise detection against ${against}: ${int(d.proposals)} proposals, ${int(d.noisy)} wrong labels among ${int(d.scored)}: ` +
        `precision ${num(d.precision)}, recall ${num(d.recall)}, F1 ${num(d.f1)}`,
    );
    if (d.low_importance_precision !== null) lines.push(`lowest-importance 10%: ${pct(d.low_importance_precision)} wrong labels`);
    lines.push(`relabel accuracy: ${pct(r.relabel_accuracy)} of proposals (${pct(r.relabel_accuracy_detected)} of true detections)`);
  } else {
    lines.push(`${int(r.proposal_confusions.reduce((s, p) => s + p.count, 0))} proposals (no reference labels to score them)`);
  }
  return lines;
}

/** The full report: summary, importance histogram and the most frequent proposal confusions. */
export function formatReport(r: RunReport, width = 40, topPairs = 12): string[] {
  const lines = formatReportSummary(r);
  const h = r.importance_histogram;
  if (h) {
    lines.push('', 'importance of the training images (final alpha):' + (r.detection ? '  # = label right, ~ = label wrong' : ''));
    const totals = h.clean.map((c, i) => c + h.noisy[i]! + h.unscored[i]!);
    const max = Math.max(1, ...totals);
    totals.forEach((t, i) => {
      const scale = (n: number): number => Math.round((n / max) * width);
      const bar = '#'.repeat(scale(h.clean[i]! + h.unscored[i]!)) + '~'.repeat(scale(h.noisy[i]!));
      const split = r.detection ? `  (${int(h.noisy[i]!)} wrong)` : '';
      lines.push(`  ${h.edges[i]!.toFixed(1)}-${h.edges[i + 1]!.toFixed(1)} ${bar.padEnd(width + 1)}${int(t).padStart(7)}${split}`);
    });
  }
  if (r.proposal_confusions.length) {
    lines.push('', 'proposals by class pair (given -> proposed):');
    const w = Math.max(...r.proposal_confusions.slice(0, topPairs).map((p) => `${p.from} -> ${p.to}`.length));
    for (const p of r.proposal_confusions.slice(0, topPairs)) {
      const right = p.correct === null ? '' : `  (${pct(p.correct / p.count)} right)`;
      lines.push(`  ${`${p.from} -> ${p.to}`.padEnd(w)} ${int(p.count).padStart(7)}${right}`);
    }
    const rest = r.proposal_confusions.length - topPairs;
    if (rest > 0) lines.push(`  ... ${rest} more pairs`);
  } else {
    lines.push('', 'no proposals');
  }
  return lines;
}
