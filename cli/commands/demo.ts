import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const demoCommand: Command = {
  name: 'demo',
  summary: '(in progress)',
  usage: 'usage: fer-clean demo',
  options: {},
  async run() {
    throw new FerCleanError('demo: not built yet');
  },
};
