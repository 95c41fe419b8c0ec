import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const trainCommand: Command = {
  name: 'train',
  summary: '(in progress)',
  usage: 'usage: fer-clean train',
  options: {},
  async run() {
    throw new FerCleanError('train: not built yet');
  },
};
