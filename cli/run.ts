import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isFerCleanError } from '../src/errors.js';
import { ReviewOptionError } from '../src/review/domain/options.js';
import { reviewOptionInFlags } from './commands/shared.js';
import { printable } from '../src/printable.js';
import { resolveDbPath } from '../src/store/db.js';
import { describeSqliteError } from '../src/store/sqlite-errors.js';
import { err, out, processIo, type Io } from './io.js';
import { commands } from './commands/index.js';
import { UsageError } from './command.js';

/** Problems of one error printed before "... and N more" (100,000 unknown paths must not print 100,000 lines). */
export const MAX_DETAILS = 50;

/** Common flags every command takes. */
export const commonOptions = {
  db: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

function usageAll(): string {
  const lines = ['usage: fer-clean <command> [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(8)} ${c.summary}`);
  lines.push('', 'Run `fer-clean <command> --help` for a command\'s options. The database is ./fer-clean.db unless --db PATH or FER_CLEAN_DB says otherwise.');
  return lines.join('\n');
}

/** Runs one CLI invocation and returns its exit code. Never throws for user errors. */
export async function run(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(io, usageAll());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    out(io, '0.1.0');
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    err(io, `fer-clean: unknown command '${name}'\n\n${usageAll()}`);
    return 2;
  }
  const cmd = await entry.load();
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...commonOptions, ...cmd.options },
      allowPositionals: cmd.allowPositionals ?? false,
      strict: true,
    });
  } catch (e) {
    err(io, `fer-clean ${cmd.name}: ${(e as Error).message}\n\n${cmd.usage}`);
    return 2;
  }
  if (parsed.values['help']) {
    out(io, cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(parsed as never, io);
  } catch (e) {
    if (isFerCleanError(e)) {
      // a message is one line (it may quote a CSV cell holding a line feed: shown escaped); usage follows it
      err(io, `fer-clean ${cmd.name}: ${printable(e instanceof ReviewOptionError ? reviewOptionInFlags(e) : e.message)}`);
      if (e instanceof UsageError) err(io, `\n${e.usage}`);
      // one problem per line: a line feed inside one (a CSV cell) is shown escaped; a long list ends with a count
      for (const d of e.details.slice(0, MAX_DETAILS)) err(io, `  ${printable(d)}`);
      if (e.details.length > MAX_DETAILS) err(io, `  ... and ${e.details.length - MAX_DETAILS} more`);
      return 1;
    }
    const sqlite = describeSqliteError(e, resolveDbPath(parsed.values['db'] as string | undefined, io.env));
    if (sqlite) {
      err(io, `fer-clean ${cmd.name}: ${sqlite}`);
      return 1;
    }
    err(io, `fer-clean ${cmd.name}: internal error: ${(e as Error).stack ?? String(e)}`);
    return 70;
  }
}
