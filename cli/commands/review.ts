import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const reviewCommand: Command = {
  name: 'review',
  summary: '(in progress)',
  usage: 'usage: fer-clean review',
  options: {},
  async run() {
    throw new FerCleanError('review: not built yet');
  },
};
