import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const exportCommand: Command = {
  name: 'export',
  summary: '(in progress)',
  usage: 'usage: fer-clean export',
  options: {},
  async run() {
    throw new FerCleanError('export: not built yet');
  },
};
