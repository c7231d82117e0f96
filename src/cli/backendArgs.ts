/**
 * The backend options every training command takes (`--backend`, `--threads`): declared once,
 * so their help, parsing and checks are the same everywhere.
 */
import { selectBackend, type BackendChoice, type BackendInfo } from '../backend/selectBackend.js';
import { MAX_WASM_THREADS } from '../backend/wasmThreads.js';
import { choiceOption, intOption } from './args.js';

export const BACKEND_HELP = `  --backend B            auto | tensorflow | wasm | cpu (default auto)
  --threads N            wasm only: compute with N threads (1-${MAX_WASM_THREADS}, default 1); same results,
                         faster where the machine runs threads in parallel
`;

export const BACKEND_OPTIONS = {
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

export interface BackendArgs {
  choice: BackendChoice;
  threads: number | undefined;
}

/** Checks the options (a ConfigError, exit code 2, before anything starts). */
export function backendArgs(v: { backend?: unknown; threads?: unknown }): BackendArgs {
  const choice = choiceOption<BackendChoice>('backend', v.backend, ['auto', 'tensorflow', 'wasm', 'cpu'], 'auto');
  const threads = v.threads === undefined ? undefined : intOption('threads', v.threads, 1, 1);
  return { choice, threads };
}

export function selectBackendFromArgs(args: BackendArgs, say: (line: string) => void): Promise<BackendInfo> {
  return selectBackend(args.choice, say, args.threads === undefined ? {} : { threads: args.threads });
}
