/**
 * A small cache of open read-only files (mdbox reads many messages from one m.N file). The files are
 * read with synchronous positional reads (SyncFile): through fs.promises every message's header and
 * metadata reads were thread-pool round trips the backup waited for (a 10k-message mdbox backup was
 * idle 2.8 s of 4.3 s, profiled).
 */
import { SyncFile } from './dbox-file.js';

export interface OpenFile {
  readonly fh: SyncFile;
  readonly size: number;
}

export class FileHandleCache {
  private readonly files = new Map<string, Promise<OpenFile>>();

  constructor(private readonly max = 8) {}

  /** Open `file` (or reuse it). Errors are the raw Node errors; the caller maps them. */
  async get(file: string): Promise<OpenFile> {
    let p = this.files.get(file);
    if (p) {
      this.files.delete(file);
      this.files.set(file, p); // most recently used last
      return p;
    }
    p = (async () => {
      const fh = SyncFile.open(file);
      try {
        return { fh, size: (await fh.stat()).size };
      } catch (e) {
        await fh.close();
        throw e;
      }
    })();
    this.files.set(file, p);
    p.catch(() => this.files.delete(file));
    while (this.files.size > this.max) {
      const [oldest, op] = this.files.entries().next().value as [string, Promise<OpenFile>];
      this.files.delete(oldest);
      op.then((f) => f.fh.close(), () => undefined).catch(() => undefined);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((p) => p.then((f) => f.fh.close(), () => undefined)));
  }
}
