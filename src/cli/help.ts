/** Shared help text: the EXIT STATUS list every command description ends with. */
import { EXIT_CODE_DESCRIPTIONS } from '../core/exit-codes.js';

export function exitStatusHelp(): string {
  return ['EXIT STATUS', ...EXIT_CODE_DESCRIPTIONS.map(([code, text]) => `  ${String(code).padEnd(4)}${text}`)].join('\n');
}
