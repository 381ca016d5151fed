/**
 * Random access into a seekable-format .zst file (see zstd-format.ts for the layout).
 *
 * `open` returns null unless the file ends with a seek table that describes it exactly (entries'
 * compressed sizes add up to the seek table's offset). Files without a table, with a table of a future
 * layout (reserved descriptor bits set), or made by concatenating several seekable files are all still
 * valid zstd streams: callers then read them sequentially with createDecompressStream, which verifies
 * every frame anyway.
 *
 * Reads touch only the frames covering the requested range; each frame is read and decompressed whole
 * (at most the writer's frame size, 1 MiB by default), one at a time.
 */
import { open as openFileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import binding from 'zstd-napi/binding.js';
import {
  ArchiveCorruptError,
  ArchiveTruncatedError,
  InputNotFoundError,
  UnexpectedError,
  fromSystemError,
} from '../../core/errors.js';
import {
  SEEK_TABLE_FOOTER_SIZE,
  ZSTD_FRAME_MAGIC,
  frameContentChecksum,
  parseSeekTable,
  parseSeekTableFooter,
  type SeekTableEntry,
} from './zstd-format.js';

/** The part of fs.promises.FileHandle this module uses; inject another (e.g. counting) one in tests. */
export interface RandomAccessFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface SeekableOpenOptions {
  /** Opens `path` for reading; default fs.promises.open(path, 'r'). */
  openFile?: (path: string) => Promise<RandomAccessFile>;
}

/** Largest frame content we agree to allocate for (the reference reader's historical limit, 2 GiB). */
const MAX_READABLE_FRAME_SIZE = 0x80000000;

export class SeekableZstdFile {
  /** Total decompressed size of all frames. */
  readonly decompressedSize: number;
  /** Number of frames listed in the seek table. */
  readonly frameCount: number;

  private readonly path: string;
  private readonly file: RandomAccessFile;
  private readonly entries: readonly SeekTableEntry[];
  /** compressedStart[i] / decompressedStart[i]: where frame i starts; index frameCount holds the totals. */
  private readonly compressedStart: Float64Array;
  private readonly decompressedStart: Float64Array;
  private readonly dctx = new binding.DCtx();
  private closed = false;

  private constructor(path: string, file: RandomAccessFile, entries: readonly SeekTableEntry[]) {
    this.path = path;
    this.file = file;
    this.entries = entries;
    this.frameCount = entries.length;
    this.compressedStart = new Float64Array(entries.length + 1);
    this.decompressedStart = new Float64Array(entries.length + 1);
    for (let i = 0; i < entries.length; i++) {
      this.compressedStart[i + 1] = this.compressedStart[i]! + entries[i]!.compressedSize;
      this.decompressedStart[i + 1] = this.decompressedStart[i]! + entries[i]!.decompressedSize;
    }
    this.decompressedSize = this.decompressedStart[entries.length]!;
  }

  /** Open `path`; null if it has no usable seek table (then read it sequentially). */
  static async open(path: string, options: SeekableOpenOptions = {}): Promise<SeekableZstdFile | null> {
    let file: RandomAccessFile;
    try {
      file = await (options.openFile ?? defaultOpenFile)(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code === 'ENOENT') {
        throw new InputNotFoundError(`cannot open dump ${path}: no such file`, {
          path,
          cause: err,
          hint: 'check the file name',
        });
      }
      throw fromSystemError(err, 'open the dump', { path });
    }
    try {
      const entries = await readSeekTable(path, file);
      if (entries === null) {
        await file.close();
        return null;
      }
      return new SeekableZstdFile(path, file, entries);
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
  }

  /** Decompressed bytes [start, end), reading and decompressing only the frames that cover them. */
  createReadStream(start: number, end: number): Readable {
    this.assertOpen();
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end) {
      throw new UnexpectedError(`invalid range [${start}, ${end}) requested from ${this.path}`);
    }
    if (end > this.decompressedSize) {
      throw new ArchiveCorruptError(
        `range [${start}, ${end}) lies beyond the end of ${this.path}, which holds ${this.decompressedSize} bytes`,
        { path: this.path, offset: end, hint: 'the dump index does not match its data; run `mailvault verify` on the dump' },
      );
    }
    return new FrameRangeStream(this, start, end);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  /** Index of the frame holding decompressed byte `offset` (0 <= offset < decompressedSize). */
  frameIndexAt(offset: number): number {
    let lo = 0;
    let hi = this.frameCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.decompressedStart[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  frameDecompressedStart(index: number): number {
    return this.decompressedStart[index]!;
  }

  /** Read and decompress frame `index` whole, verifying it against the seek table. */
  async readFrame(index: number): Promise<Buffer> {
    this.assertOpen();
    const entry = this.entries[index]!;
    // Skippable or empty frames hold no data (the format allows them in the table).
    if (entry.decompressedSize === 0) return Buffer.alloc(0);
    const position = this.compressedStart[index]!;
    const compressed = Buffer.allocUnsafe(entry.compressedSize);
    await readFully(this.file, compressed, position, this.path);
    const corrupt = (why: string, cause?: unknown): ArchiveCorruptError =>
      new ArchiveCorruptError(
        `zstd frame ${index} of ${this.path} (compressed bytes ${position} to ${position + entry.compressedSize}) is corrupt: ${why}`,
        {
          path: this.path,
          offset: this.decompressedStart[index]!,
          cause,
          hint: 'the dump file is damaged; use another copy. `zstd -d` can recover the data before this frame',
        },
      );
    if (compressed.length < 4 || compressed.readUInt32LE(0) !== ZSTD_FRAME_MAGIC) throw corrupt('no zstd frame magic');
    let frameLength: number;
    try {
      frameLength = binding.findFrameCompressedSize(compressed);
    } catch (err) {
      throw corrupt(err instanceof Error ? err.message : String(err), err);
    }
    if (frameLength !== compressed.length) {
      throw corrupt(`the frame is ${frameLength} bytes long but the seek table says ${compressed.length}`);
    }
    const tableChecksum = entry.checksum;
    const frameChecksum = frameContentChecksum(compressed);
    if (tableChecksum !== undefined && frameChecksum !== undefined && tableChecksum !== frameChecksum) {
      throw corrupt(`its checksum ${hex(frameChecksum)} differs from the seek table's ${hex(tableChecksum)}`);
    }
    const out = Buffer.allocUnsafe(entry.decompressedSize);
    let length: number;
    try {
      length = this.dctx.decompress(out, compressed);
    } catch (err) {
      throw corrupt(err instanceof Error ? err.message : String(err), err);
    }
    if (length !== entry.decompressedSize) {
      throw corrupt(`it holds ${length} bytes but the seek table says ${entry.decompressedSize}`);
    }
    return out;
  }

  private assertOpen(): void {
    if (this.closed) throw new UnexpectedError(`seekable zstd file ${this.path} is already closed`);
  }
}

/** Yields decompressed [start, end) frame by frame; backpressure through Readable's _read. */
class FrameRangeStream extends Readable {
  private readonly source: SeekableZstdFile;
  private readonly end: number;
  private position: number;
  private frame: number;

  constructor(source: SeekableZstdFile, start: number, end: number) {
    super();
    this.source = source;
    this.position = start;
    this.end = end;
    this.frame = start < end ? source.frameIndexAt(start) : 0;
  }

  override _read(): void {
    if (this.position >= this.end) {
      this.push(null);
      return;
    }
    const index = this.frame;
    this.source.readFrame(index).then(
      (data) => {
        const frameStart = this.source.frameDecompressedStart(index);
        const from = this.position - frameStart;
        const to = Math.min(this.end - frameStart, data.length);
        this.frame = index + 1;
        this.position = frameStart + to;
        if (to > from) this.push(data.subarray(from, to));
        else this._read();
      },
      (err: Error) => this.destroy(err),
    );
  }
}

async function defaultOpenFile(path: string): Promise<RandomAccessFile> {
  return openFileHandle(path, 'r');
}

async function readSeekTable(path: string, file: RandomAccessFile): Promise<SeekTableEntry[] | null> {
  const { size } = await file.stat();
  if (size < SEEK_TABLE_FOOTER_SIZE + 8) return null;
  const footerBytes = Buffer.alloc(SEEK_TABLE_FOOTER_SIZE);
  await readFully(file, footerBytes, size - SEEK_TABLE_FOOTER_SIZE, path);
  const footer = parseSeekTableFooter(footerBytes);
  if (footer === null || footer.tableFrameSize > size) return null;
  const tableBytes = Buffer.alloc(footer.tableFrameSize);
  await readFully(file, tableBytes, size - footer.tableFrameSize, path);
  const entries = parseSeekTable(tableBytes, footer);
  if (entries === null) return null;
  let compressedTotal = 0;
  for (const e of entries) {
    if (e.decompressedSize > MAX_READABLE_FRAME_SIZE) return null;
    compressedTotal += e.compressedSize;
  }
  return compressedTotal === size - footer.tableFrameSize ? entries : null;
}

async function readFully(file: RandomAccessFile, buffer: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(buffer, done, buffer.length - done, position + done));
    } catch (err) {
      throw fromSystemError(err, 'read the dump', { path });
    }
    if (bytesRead === 0) {
      throw new ArchiveTruncatedError(`${path} ends at byte ${position + done}, before the data its seek table lists`, {
        path,
        hint: 'the file was cut short or is being rewritten; use a complete copy of the dump',
      });
    }
    done += bytesRead;
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
