/**
 * The `--compress` value: parsing and validation.
 */
import { UsageError } from '../../core/errors.js';
import { MAX_FRAME_DECOMPRESSED_SIZE } from './zstd-format.js';

export type CompressionOption =
  | { type: 'none' }
  | {
      type: 'zstd';
      /** 1..19. */
      level: number;
      /** Uncompressed bytes per independent frame (the seek granularity); default 1 MiB. */
      frameSize?: number;
      /**
       * Compress frames in a worker thread, so the writer and the compressor use two cores.
       * Default true. Small outputs (one frame) never start the worker.
       */
      useWorker?: boolean;
    };

export const DEFAULT_ZSTD_LEVEL = 3;
export const MIN_ZSTD_LEVEL = 1;
export const MAX_ZSTD_LEVEL = 19;
export const DEFAULT_FRAME_SIZE = 1024 * 1024;

const EXPECTED = `expected "none", "zstd" or "zstd:LEVEL" with LEVEL ${MIN_ZSTD_LEVEL} to ${MAX_ZSTD_LEVEL}`;

/** 'none' | 'zstd' | 'zstd:LEVEL' (LEVEL 1..19, default 3) -> option; bad value -> UsageError naming it. */
export function parseCompressionOption(text: string): CompressionOption {
  if (text === 'none') return { type: 'none' };
  if (text === 'zstd') return { type: 'zstd', level: DEFAULT_ZSTD_LEVEL };
  const match = /^zstd:(\d{1,2})$/.exec(text);
  if (match) {
    const level = Number(match[1]);
    if (level >= MIN_ZSTD_LEVEL && level <= MAX_ZSTD_LEVEL) return { type: 'zstd', level };
    throw new UsageError(`invalid --compress value "${text}": zstd level ${level} is out of range`, {
      hint: EXPECTED,
    });
  }
  throw new UsageError(`invalid --compress value "${text}": not a known compression`, { hint: EXPECTED });
}

/** Validated zstd settings with defaults filled in; a bad programmatic value -> UsageError naming it. */
export interface ZstdSettings {
  level: number;
  frameSize: number;
  useWorker: boolean;
}

export function resolveZstdSettings(option: Extract<CompressionOption, { type: 'zstd' }>): ZstdSettings {
  const { level } = option;
  if (!Number.isInteger(level) || level < MIN_ZSTD_LEVEL || level > MAX_ZSTD_LEVEL) {
    throw new UsageError(`invalid zstd level ${String(level)}: out of range`, { hint: EXPECTED });
  }
  const frameSize = option.frameSize ?? DEFAULT_FRAME_SIZE;
  if (!Number.isInteger(frameSize) || frameSize < 1 || frameSize > MAX_FRAME_DECOMPRESSED_SIZE) {
    throw new UsageError(`invalid zstd frame size ${String(frameSize)}: out of range`, {
      hint: `use a whole number of bytes from 1 to ${MAX_FRAME_DECOMPRESSED_SIZE} (the default is ${DEFAULT_FRAME_SIZE})`,
    });
  }
  return { level, frameSize, useWorker: option.useWorker ?? true };
}
