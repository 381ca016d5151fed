/**
 * Results of a benchmark run: medians per scenario, the ratios against the issue's targets (PASS/MISS),
 * rendered as JSON and as a markdown report.
 */
import type { ScenarioId } from './scenarios.js';

export interface ScenarioResult {
  readonly id: ScenarioId | string;
  readonly label: string;
  readonly mailvault: boolean;
  /** Timed runs (the warm-up run is not included). */
  readonly seconds: readonly number[];
  readonly medianSeconds: number;
  /** Corpus bytes / median seconds, in MB/s (10^6). */
  readonly mbPerSecond: number;
  /** Largest peak RSS over the timed runs. */
  readonly peakRssMiB: number;
  /** Set when the command failed; no timings then. */
  readonly error?: string;
}

export interface TargetResult {
  readonly id: string;
  readonly what: string;
  /** The measured ratio or value; null when not measured. */
  readonly value: number | null;
  readonly need: string;
  readonly verdict: 'PASS' | 'MISS' | 'TODO';
  readonly note?: string;
}

export interface StoreResult {
  readonly profile: string;
  readonly diskBytes: number;
  readonly scenarios: readonly ScenarioResult[];
  readonly targets: readonly TargetResult[];
}

export interface SizeResult {
  readonly messages: number;
  readonly corpusBytes: number;
  readonly corpusByKind: Readonly<Record<string, number>>;
  readonly largestMessageBytes: number;
  readonly populateSeconds: number;
  readonly loadAverageBefore: string;
  readonly loadAverageAfter: string;
  readonly stores: readonly StoreResult[];
}

export interface BenchResults {
  readonly date: string;
  readonly machine: { cores: number; cpu: string; memoryGiB: number; kernel: string };
  readonly versions: { node: string; dovecot: string; tar: string; zstd: string; mailvault: string };
  readonly runs: number;
  readonly method: readonly string[];
  readonly sizes: readonly SizeResult[];
  /** Peak RSS growth across sizes, per profile (mailvault processes). */
  readonly memoryGrowth: readonly TargetResult[];
  readonly notMeasured: readonly string[];
  /** Other stand-alone benchmarks run after the main ones, with their output verbatim. */
  readonly external: ReadonlyArray<{ command: string; output: string; ok: boolean }>;
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

function atLeast(id: string, what: string, value: number | null, need: number): TargetResult {
  return { id, what, value, need: `>= ${need}x`, verdict: value === null ? 'TODO' : value >= need ? 'PASS' : 'MISS' };
}

function atMost(id: string, what: string, value: number | null, need: number): TargetResult {
  return { id, what, value, need: `<= ${need}x`, verdict: value === null ? 'TODO' : value <= need ? 'PASS' : 'MISS' };
}

/** The issue's targets for one store, from the scenario medians (time ratios = throughput ratios). */
export function evaluateTargets(scenarios: readonly ScenarioResult[]): TargetResult[] {
  const t = (id: ScenarioId): number | undefined => {
    const s = scenarios.find((x) => x.id === id);
    return s && !s.error ? s.medianSeconds : undefined;
  };
  const mvRss = scenarios.filter((s) => s.mailvault && !s.error).map((s) => s.peakRssMiB);
  const peak = mvRss.length ? Math.max(...mvRss) : null;
  return [
    atLeast('backup-zstd-vs-tar-zstd', 'full backup, zstd: throughput vs tar | zstd -3 -T1', ratio(t('tar-zstd'), t('mv-backup-zstd')), 1.0),
    atLeast('backup-none-vs-tar-read', 'full backup, uncompressed: throughput vs raw tar read', ratio(t('tar-read'), t('mv-backup-none')), 0.5),
    atLeast('backup-none-vs-doveadm', 'full backup (none) vs doveadm backup', ratio(t('doveadm-backup'), t('mv-backup-none')), 5),
    atLeast('backup-zstd-vs-doveadm', 'full backup (zstd) vs doveadm backup', ratio(t('doveadm-backup'), t('mv-backup-zstd')), 5),
    atLeast('restore-vs-doveadm', 'restore into empty Maildir vs doveadm backup', ratio(t('doveadm-backup'), t('mv-restore-maildir')), 3),
    atMost('incremental-vs-full', 'incremental (zstd) after 1 % new + 1 % flag changes: time vs full backup (zstd)', ratio(t('mv-backup-incremental'), t('mv-backup-zstd')), 0.05),
    { id: 'peak-rss', what: 'peak RSS of every mailvault command (MiB)', value: peak, need: '< 200 MiB', verdict: peak === null ? 'TODO' : peak < 200 ? 'PASS' : 'MISS' },
  ];
}

/**
 * "Not growing with message count": per profile, the largest mailvault peak RSS at the largest size
 * divided by the one at the smallest size must stay <= 1.25 (with one size: TODO).
 */
export function evaluateMemoryGrowth(sizes: readonly SizeResult[]): TargetResult[] {
  if (sizes.length < 2) return [];
  const first = sizes[0]!;
  const last = sizes[sizes.length - 1]!;
  const out: TargetResult[] = [];
  for (const store of first.stores) {
    const peakOf = (s: SizeResult): number | null => {
      const v = s.stores.find((x) => x.profile === store.profile)?.targets.find((x) => x.id === 'peak-rss')?.value;
      return v ?? null;
    };
    const a = peakOf(first);
    const b = peakOf(last);
    const value = a !== null && b !== null ? b / a : null;
    out.push({
      id: `rss-growth-${store.profile}`,
      what: `${store.profile}: peak RSS at ${last.messages} / at ${first.messages} messages`,
      value,
      need: '<= 1.25x',
      verdict: value === null ? 'TODO' : value <= 1.25 ? 'PASS' : 'MISS',
      note: a !== null && b !== null ? `${a.toFixed(0)} -> ${b.toFixed(0)} MiB` : '',
    });
  }
  return out;
}

function fmt(n: number | null, digits = 2): string {
  return n === null || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

/** Text for a markdown table cell: pipes escaped, one line. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function renderMarkdown(r: BenchResults): string {
  const out: string[] = [];
  out.push(`# mailvault benchmark, ${r.date}`, '');
  out.push(
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}. ` +
      `Dovecot ${r.versions.dovecot}, Node ${r.versions.node}, ${r.versions.tar}, zstd ${r.versions.zstd}, mailvault ${r.versions.mailvault}.`,
    '',
  );
  out.push('Method:', '', ...r.method.map((m) => `- ${m}`), '');
  out.push('## Targets', '');
  out.push('| messages | store | target | measured | needed | verdict |', '|---:|---|---|---:|---:|---|');
  for (const s of r.sizes) {
    for (const st of s.stores) {
      for (const t of st.targets) {
        out.push(`| ${s.messages} | ${st.profile} | ${cell(t.what)} | ${t.verdict === 'TODO' ? cell(t.note ?? 'not measured') : fmt(t.value)} | ${t.need} | ${t.verdict} |`);
      }
    }
  }
  for (const t of r.memoryGrowth) out.push(`| all | ${t.id.replace('rss-growth-', '')} | ${cell(`peak RSS not growing: ${t.what} (${t.note ?? ''})`)} | ${fmt(t.value)} | ${t.need} | ${t.verdict} |`);
  out.push('');
  for (const s of r.sizes) {
    out.push(`## ${s.messages} messages`, '');
    const kinds = Object.entries(s.corpusByKind).map(([k, v]) => `${v} ${k}`).join(', ');
    out.push(
      `Corpus: ${mb(s.corpusBytes)} of mail (${kinds}; largest ${mb(s.largestMessageBytes)}), populated through \`doveadm import\` in ${s.populateSeconds.toFixed(0)} s. ` +
        `Load average before / after: ${s.loadAverageBefore} / ${s.loadAverageAfter}.`,
      '',
    );
    for (const st of s.stores) {
      out.push(`### ${st.profile} (${mb(st.diskBytes)} on disk)`, '');
      out.push('| operation | median s | runs (s) | MB/s of mail | peak RSS MiB |', '|---|---:|---|---:|---:|');
      for (const sc of st.scenarios) {
        if (sc.error) out.push(`| ${cell(sc.label)} | FAILED | ${cell(sc.error.slice(0, 300))} | - | - |`);
        else out.push(`| ${cell(sc.label)} | ${sc.medianSeconds.toFixed(2)} | ${sc.seconds.map((x) => x.toFixed(2)).join(', ')} | ${sc.mbPerSecond.toFixed(1)} | ${sc.peakRssMiB.toFixed(0)} |`);
      }
      out.push('');
    }
  }
  for (const e of r.external) out.push(`## \`${e.command}\`${e.ok ? '' : ' (FAILED)'}`, '', '```', e.output, '```', '');
  if (r.notMeasured.length) out.push('## Not measured by this run', '', ...r.notMeasured.map((m) => `- ${m}`), '');
  return out.join('\n');
}
