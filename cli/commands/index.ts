import type { Command } from '../run.js';
import { ingestCommand } from './ingest.js';
import { embedCommand } from './embed.js';
import { trainCommand } from './train.js';
import { reportCommand } from './report.js';
import { reviewCommand } from './review.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';

/** Every `fer-clean` command, in the order of the workflow. */
export const commands: Command[] = [
  ingestCommand,
  embedCommand,
  trainCommand,
  reportCommand,
  reviewCommand,
  exportCommand,
  demoCommand,
];
