/**
 * The backend options every training command takes (`--backend`, `--threads`): declared once,
 * so their help, parsing and checks are the same everywhere.
 */
import { selectBackend, type BackendChoice, type BackendInfo } from '../backend/selectBackend.js';
import { MAX_WASM_THREADS } from '../backend/wasmThreads.js';
import { ConfigError } from '../errors.js';
import { choiceOption, intOption } from './args.js';

export const BACKEND_HELP = `  --backend B            auto | tensorflow | wasm | cpu (default auto)
  --threads N            wasm (also under auto, unless a native backend loads): compute with N
                         threads (1-${MAX_WASM_THREADS}, default 1); the same results, faster where the
                         machine runs threads in parallel
`;

export const BACKEND_OPTIONS = {
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

export interface BackendArgs {
  choice: BackendChoice;
  threads: number | undefined;
}

/** Checks the options (a ConfigError, exit code 2) before anything is written or started. */
export function backendArgs(v: { backend?: unknown; threads?: unknown }): BackendArgs {
  const choice = choiceOption<BackendChoice>('backend', v.backend, ['auto', 'tensorflow', 'wasm', 'cpu'], 'auto');
  const threads = v.threads === undefined ? undefined : intOption('threads', v.threads, 1, 1);
  if (threads !== undefined && threads > MAX_WASM_THREADS) {
    throw new ConfigError(`--threads must be at most ${MAX_WASM_THREADS} (the wasm thread pool's cap), got ${threads}`);
  }
  if (threads !== undefined && threads > 1 && (choice === 'cpu' || choice === 'tensorflow')) {
    throw new ConfigError(`--threads ${threads} applies to --backend wasm (or auto) only, not --backend ${choice}: drop --threads, or use --backend wasm`);
  }
  return { choice, threads };
}

export function selectBackendFromArgs(args: BackendArgs, say: (line: string) => void): Promise<BackendInfo> {
  return selectBackend(args.choice, say, args.threads === undefined ? {} : { threads: args.threads });
}
