/**
 * The backend options every training command takes (`--backend`, `--threads`): declared once,
 * so their help, parsing and checks are the same everywhere.
 */
import { selectBackend, type BackendChoice, type BackendInfo } from '../backend/selectBackend.js';
import { MAX_WASM_THREADS } from '../backend/wasmThreads.js';
import { ConfigError } from '../errors.js';
import { choiceOption } from './args.js';

export const BACKEND_HELP = `  --backend B            auto | tensorflow | wasm | cpu (default auto)
  --threads N|auto       wasm (also under --backend auto, unless a native backend loads): compute
                         with N threads (1-${MAX_WASM_THREADS}); auto (the default) measures whether
                         the cores it may use run at once: all of them if they do, else half
                         as many (down to 2) if those do, else 1;
                         the results are the same whatever the count
`;

export const BACKEND_OPTIONS = {
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

export interface BackendArgs {
  choice: BackendChoice;
  threads: number | 'auto';
}

/** Checks the options (a ConfigError, exit code 2) before anything is written or started. */
export function backendArgs(v: { backend?: unknown; threads?: unknown }): BackendArgs {
  const choice = choiceOption<BackendChoice>('backend', v.backend, ['auto', 'tensorflow', 'wasm', 'cpu'], 'auto');
  // Digits only: Number() would also take " 2", "0x2", "2e0" and "+2".
  const threads = v.threads === undefined || v.threads === 'auto' ? 'auto' : /^\d+$/.test(String(v.threads)) ? Number(v.threads) : NaN;
  if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1 && threads <= MAX_WASM_THREADS)) {
    throw new ConfigError(`--threads must be auto or an integer from 1 to ${MAX_WASM_THREADS} (the wasm thread pool's cap), got "${String(v.threads)}"`);
  }
  if (threads !== 'auto' && threads > 1 && (choice === 'cpu' || choice === 'tensorflow')) {
    throw new ConfigError(`--threads ${threads} applies to --backend wasm (or auto) only, not --backend ${choice}: drop --threads, or use --backend wasm`);
  }
  return { choice, threads };
}

export function selectBackendFromArgs(args: BackendArgs, say: (line: string) => void): Promise<BackendInfo> {
  return selectBackend(args.choice, say, { threads: args.threads });
}
