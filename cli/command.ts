import type { ParseArgsConfig } from 'node:util';
import { FerCleanError } from '../src/errors.js';
import type { Io } from './io.js';

/** Wrong arguments: the CLI prints the message, then the command's usage. */
export class UsageError extends FerCleanError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** One `fer-clean` command: its flags, its usage text, and what it does with parsed arguments. */
export interface Command {
  name: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }, io: Io): Promise<number>;
}
