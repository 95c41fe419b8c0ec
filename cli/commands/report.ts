import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const reportCommand: Command = {
  name: 'report',
  summary: '(in progress)',
  usage: 'usage: fer-clean report',
  options: {},
  async run() {
    throw new FerCleanError('report: not built yet');
  },
};
