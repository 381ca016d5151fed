/**
 * Restore from the dumps a user names: a chain (a full dump, then incrementals, planned as a whole by
 * chain.ts), or dumps restored one after another, each read at random when it is a file and the
 * selection is narrow (restore-from-file.ts), else in one pass (restore.ts).
 */
import type { Readable } from 'node:stream';
import { chainAt, readChainLinks, restoreChain, type ChainRestoreSummary } from './chain.js';
import { restore, type RestoreOptions, type RestoreSummary, type SinkOpener } from './restore.js';
import { canRestoreAtRandom, restoreFromFile } from './restore-from-file.js';
import { UsageError } from '../core/errors.js';

export interface RestoreDumpsOptions extends RestoreOptions {
  /** Restore the state at this time (Unix seconds): only the dumps of the chain made at or before it. */
  readonly at?: number;
  /** Opens a dump for a one-pass read ("-" is stdin); supplied by the front end. */
  readonly openInput: (dump: string) => Promise<Readable>;
  /** Called after each dump of a non-chain restore. */
  readonly onDumpDone?: (dump: string, summary: RestoreSummary) => void;
  /** Called when a file cannot be read at random and is read in one pass instead. */
  readonly onFallback?: (message: string) => void;
}

export type RestoreDumpsResult =
  | { readonly kind: 'chain'; readonly files: readonly string[]; readonly summary: ChainRestoreSummary }
  | { readonly kind: 'dumps'; readonly results: readonly { readonly dump: string; readonly summary: RestoreSummary }[] };

export async function restoreDumps(dumps: readonly string[], openSink: SinkOpener, options: RestoreDumpsOptions): Promise<RestoreDumpsResult> {
  if (dumps.length === 0) throw new UsageError('no dump given');
  if (dumps.filter((d) => d === '-').length > 1) throw new UsageError('stdin (-) can be given only once');
  if (options.at !== undefined || (dumps.length > 1 && !dumps.includes('-'))) {
    let links = await readChainLinks(dumps);
    if (options.at !== undefined || links.some((l) => l.header.kind === 'incremental')) {
      if (options.at !== undefined) links = chainAt(links, options.at);
      return { kind: 'chain', files: links.map((l) => l.file), summary: await restoreChain(links, openSink, options) };
    }
  }
  const results: { dump: string; summary: RestoreSummary }[] = [];
  for (const dump of dumps) {
    const summary =
      (canRestoreAtRandom(dump, options) ? await restoreFromFile(dump, openSink, { ...options, ...(options.onFallback ? { onFallback: options.onFallback } : {}) }) : null) ??
      (await restore(await options.openInput(dump), openSink, options));
    results.push({ dump, summary });
    options.onDumpDone?.(dump, summary);
  }
  return { kind: 'dumps', results };
}
