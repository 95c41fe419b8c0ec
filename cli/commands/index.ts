import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  /** Loads the command's module only when it runs, so start-up pays for nothing else (tfjs, Ink, ...). */
  load: () => Promise<Command>;
}

/** Every `fer-clean` command, in the order of the workflow. */
export const commands: CommandEntry[] = [
  { name: 'ingest', summary: 'read a dataset (csv, ferplus, imagefolder, rafdb, fer2013) into the database', load: async () => (await import('./ingest.js')).ingestCommand },
  { name: 'embed', summary: 'compute face features with a pretrained network (faceexpr, facerec, faceexpr+facerec)', load: async () => (await import('./embed.js')).embedCommand },
  { name: 'train', summary: 'train SCN (or a ce / confident-learning baseline) and store label proposals', load: async () => (await import('./train.js')).trainCommand },
  { name: 'quality', summary: 'find near-duplicates (and leakage across splits), outliers, non-faces, dark/light/blurry faces', load: async () => (await import('./quality.js')).qualityCommand },
  { name: 'report', summary: "score a run: test accuracy, noise detection, importance histogram", load: async () => (await import('./report.js')).reportCommand },
  { name: 'review', summary: 'review proposed relabels in the terminal (accept, reject, set by hand)', load: async () => (await import('./review.js')).reviewCommand },
  { name: 'queue', summary: 'print the next undecided proposals with their estimates (scripted review)', load: async () => (await import('./queue.js')).queueCommand },
  { name: 'decide', summary: 'apply review decisions from a CSV (scripted review)', load: async () => (await import('./decide.js')).decideCommand },
  { name: 'accept', summary: 'bulk accept every undecided proposal with estimate >= P', load: async () => (await import('./accept.js')).acceptCommand },
  { name: 'undo', summary: 'undo your last decision (or bulk accept) in a run', load: async () => (await import('./undo.js')).undoCommand },
  { name: 'export', summary: "write the corrected labels as CSV (or in the dataset's own format)", load: async () => (await import('./export.js')).exportCommand },
  { name: 'demo', summary: 'run ingest, embed, train, report and export on the bundled fixtures', load: async () => (await import('./demo.js')).demoCommand },
];
