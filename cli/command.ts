import type { ParseArgsConfig } from 'node:util';
import type { Io } from './io.js';

/** One `fer-clean` command: its flags, its usage text, and what it does with parsed arguments. */
export interface Command {
  name: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }, io: Io): Promise<number>;
}
