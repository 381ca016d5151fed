#!/bin/sh
':' //; case "$1" in backup) GLIBC_TUNABLES="glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=33554432:glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"; export GLIBC_TUNABLES; exec node --max-semi-space-size=3 --single-threaded-gc "$0" "$@";; restore) UV_THREADPOOL_SIZE="${UV_THREADPOOL_SIZE:-64}"; MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-1}"; export UV_THREADPOOL_SIZE MALLOC_ARENA_MAX;; esac; exec node --max-semi-space-size=2 "$0" "$@"
// mailvault command-line entry point. The commands are compiled and bundled into build/cli by
// `npm run build` (scripts/bundle.js says why).
//
// The two lines above are for sh and for JavaScript alike: run as a command, sh starts Node with a
// small young generation (2 MiB semi-spaces instead of up to 16); `node bin/run.js` skips them (the
// first is a "#!" line, the second a string and a comment). A backup or restore allocates steadily
// and keeps little: measured peak RSS of a 100k-message restore 186 MiB instead of 227, of a 10k
// backup 127-132 MiB instead of 153-160, CPU time within noise (CHANGELOG.md). `env -S` would do
// the same in the "#!" line, but BusyBox's env lacks it.
//
// For `backup`, the young generation is 3 MiB instead and V8's garbage collector runs on the main
// thread alone (--single-threaded-gc): a compressed backup keeps both cores of a 2-core machine busy
// (the main thread and the zstd worker), and its scavenges were slow (100k-message sdbox store, zstd:
// 2,379 scavenges in 975 ms with 2 MiB, 1,177 in 722 ms with 4 MiB), the helper threads of a
// parallel scavenge waiting for a core. Measured on 2 cores (2026-12-06), interleaved, zstd: 10k
// sdbox 1.50 -> 1.35 s, mdbox 1.59 -> 1.38 s, Maildir 1.28 -> 1.34 s (4 runs each; with 4 MiB in
// another series of 5: 1.48 -> 1.30, 1.45 -> 1.33, 1.27 -> 1.24); 100k sdbox 9.71 -> 9.10 s (3
// runs); uncompressed within noise. Peak RSS of the 100k sdbox backup with zstd: 153-159 MiB with
// 2 MiB, 170-180 with 3, 155-192 with 4 (3 runs each): 3 leaves room under the 200 MiB target.
//
// For `backup`, glibc's malloc also keeps what it frees (blocks up to 4 MiB from its heap, not mmap;
// up to 32 MiB free kept instead of trimmed): a backup frees and allocates the same large buffers
// all the time (a compressed frame of up to 1 MiB per MiB of mail, large message bodies), and
// memory handed back to the kernel costs a page fault per 4 KiB when it is touched again, about
// 11 us each on the machine measured. 10k-message Maildir backup: 64k -> 21k page faults, 2.8 ->
// 2.3 s (zstd), 2.7 -> 2.0 s (none); 100k: CPU 36 -> 29 s; peak RSS +8 to +15 MiB. Not used for
// restore: no gain there beyond its noise, and +15 MiB peak RSS. hugetlb=1 asks for transparent huge
// pages on malloc's memory (madvise; nothing where THP is "never"): fewer faults in short runs. 100k
// incremental 0.98 -> 0.92 s (8 runs), 100k full 18.0 -> 16.2 s (2 runs), peak RSS 153 -> 164-169 MiB;
// 10k full backups within noise. The settings come first in GLIBC_TUNABLES, so a value the user
// sets still wins; glibc before 2.35 and other C libraries ignore what they do not know. (A user's
// MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ does not win: glibc prefers the tunables.)
//
// For `restore`, glibc's malloc keeps one arena (MALLOC_ARENA_MAX=1, unless the variable is set)
// instead of one per thread that allocates: memory freed on one thread is reused on the others
// instead of held in a second arena. Peak RSS of a 100k-message sdbox dump restored into Maildir
// 186-192 -> 175-179 MiB, of 10k-message dumps 8-10 MiB less; CPU time within noise (3-4 runs each,
// measured on 2 cores, 2026-12-06). The variable, not the tunable, so that a MALLOC_ARENA_MAX or a
// GLIBC_TUNABLES arena setting of the user's wins. No gain measured for `backup`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// V8's optimizing compiler (TurboFan) runs on background threads, and in a run of a few seconds it
// competes with the work for the cores: a 10k-message sdbox backup spent ~0.45 s of CPU on those
// threads (per-thread /proc times; `--no-concurrent-recompilation` moved ~0.4 s onto the main thread),
// mostly compiling the large async functions of the backup loop, some of them 3-4 times. A later
// tier-up (interrupt budget 200000 instead of 67584) and less inlining (cumulative 300 instead of 920)
// compile less, and sooner-hot small functions are still optimized. Measured with
// `python3 bench/interleave.py 5-6` on the 10k bench stores (2 cores, 2026-12-06): Maildir backup
// zstd 1.22 -> 1.12 s wall (CPU 1.97 -> 1.83 s), none 0.82 -> 0.77 s; sdbox+SIS zstd 1.48 -> 1.41 s
// (CPU 2.39 -> 2.20 s), none CPU 1.53 -> 1.39 s; restore of 10k into Maildir CPU 2.43 -> 2.30 s, wall
// unchanged; 100k Maildir backup 9.41 vs 9.36 s (no loss in long runs). Set here, before any of
// mailvault is loaded, and for V8 11.3 (Node 20) only, where it was measured: V8 prints an error for a
// flag it does not know, and the defaults differ in later versions. Worker threads share the flags.
if (process.versions.v8.startsWith('11.3.')) {
  setFlagsFromString('--interrupt-budget=200000');
  setFlagsFromString('--max-inlined-bytecode-size-cumulative=300');
}

if (!existsSync(fileURLToPath(new URL('../build/cli/main.js', import.meta.url)))) {
  process.stderr.write('mailvault: not built yet: run "npm run build" (or "npm ci && npm run demo") in the project directory first\n');
  process.exit(1);
}
// libuv's thread pool (4 threads by default) runs file I/O that is not synchronous: a restore keeps up
// to 64 fsyncs in flight at each commit (storage/maildir/save.ts), and dump reads must not queue behind
// them. So the launcher line sets UV_THREADPOOL_SIZE=64 for `restore` (a value you set wins). It cannot
// be set here: libuv reads it once, when the pool starts, and Node's module loader has started it to
// read this very file (this line once did it here, and restores ran with 4 threads: 10k-message
// restore 8.1 -> 6.8 s with 64, 4 interleaved runs). `node bin/run.js restore` without the launcher
// gets 4 unless the variable is in its environment.
// oclif's execute from the bundle, the copy of oclif the bundled commands use (its subpath, not the
// package index: the index would load all of oclif).
const { execute } = await import('../build/cli/main.js');
await execute({ dir: import.meta.url });
