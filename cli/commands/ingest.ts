import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const ingestCommand: Command = {
  name: 'ingest',
  summary: '(in progress)',
  usage: 'usage: fer-clean ingest',
  options: {},
  async run() {
    throw new FerCleanError('ingest: not built yet');
  },
};
