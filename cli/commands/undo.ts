import { undoLastGroupScripted, undoLastScripted } from '../../src/review/verbs.js';
import { out } from '../io.js';
import type { Command } from '../command.js';
import { annotatorOf } from './decide.js';
import { openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean undo --run ID --annotator NAME [--duplicates]

Undoes your last decision in the run (from \`review\`, \`decide\` or \`accept\`); a bulk accept is undone as a whole.
The undo is a row of its own in the audit trail. Repeat to go further back.

  --run ID          the run (default: the dataset's latest finished run)
  --dataset NAME    with no --run: its latest finished run; with --run: must be the run's dataset
  --annotator NAME  whose decision (default: FER_CLEAN_ANNOTATOR)
  --duplicates      undo your last duplicate-group decision in the run's dataset instead (keep-label: every
                    image's label decision with it)
  --db PATH         database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const undoCommand: Command = {
  name: 'undo',
  usage: USAGE,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    annotator: { type: 'string' },
    duplicates: { type: 'boolean' },
  },
  async run({ values }, io) {
    const annotator = annotatorOf(values, io.env);
    const db = openExisting(values, io);
    try {
      if (values['duplicates']) {
        const g = undoLastGroupScripted(db, { runId: parseIntFlag(values['run'], '--run'), dataset: values['dataset'] as string | undefined, annotator });
        if (!g) out(io, `no group decision to undo for ${annotator}`);
        else out(io, `dataset ${g.run.dataset.name}: undid ${g.undone.action}${g.undone.label ? ` ${g.undone.label}` : ''} on ${g.images.length} images`);
        return 0;
      }
      const r = undoLastScripted(db, { runId: parseIntFlag(values['run'], '--run'), dataset: values['dataset'] as string | undefined, annotator });
      if (!r) out(io, `nothing to undo for ${annotator}`);
      else if (r.undone.bulk_id != null) out(io, `run ${r.run.id}: undid bulk action ${r.undone.bulk_id} (${r.count} accepted proposals)`);
      else out(io, `run ${r.run.id}: undid ${r.undone.action} on image ${r.undone.image_id} (back to ${r.undone.previous_label})`);
      return 0;
    } finally {
      db.close();
    }
  },
};
