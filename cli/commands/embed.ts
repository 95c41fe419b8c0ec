import type { Command } from '../run.js';
import { FerCleanError } from '../../src/errors.js';

// Placeholder while the command is being built (replaced by its owner).
export const embedCommand: Command = {
  name: 'embed',
  summary: '(in progress)',
  usage: 'usage: fer-clean embed',
  options: {},
  async run() {
    throw new FerCleanError('embed: not built yet');
  },
};
