/**
 * The visualizer's command-line options, shared by `train --viz` and `viz`: starting the
 * server, printing its URL as `visualizer: URL` (tests and scripts parse that line), Ctrl-C,
 * and serving the finished run (`--viz-keep`) until Ctrl-C.
 */
import { createStatelyInspect, Visualizer, DEFAULT_PORT, type StatelyInspect } from '../../visualizer/index.js';
import { ConfigError } from '../errors.js';
import { intOption, type OptionSpec } from './args.js';

export const VIZ_OPTIONS = {
  viz: { type: 'boolean' },
  port: { type: 'string' },
  host: { type: 'string' },
  break: { type: 'string', multiple: true },
  'viz-keep': { type: 'boolean' },
  'inspect-ws': { type: 'string' },
} as const satisfies OptionSpec;

export const VIZ_HELP = `  --viz                  show the run live in the visualizer (a local page; prints its URL)
  --port P               visualizer port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host H               address to bind (default 127.0.0.1: this machine only)
  --break SPEC           pause at a stage: STAGE or STAGE:FIELD OP VALUE, e.g. lossBegin,
                         backwardEnd:smoothLoss>2, epoch.validation.batchEnd (repeatable)
  --viz-keep             keep serving the finished run until Ctrl-C
  --inspect-ws URL       stream the loop's inspection events to @statelyai/inspect's
                         WebSocket inspector at URL (ws://…)
`;

type VizValues = { viz?: boolean; port?: string; host?: string; break?: string[]; 'viz-keep'?: boolean; 'inspect-ws'?: string };

export interface VizRun {
  viz: Visualizer;
  /** After the run: serve until Ctrl-C if asked to, close, and give the exit code (130 when Ctrl-C stopped the run). */
  finish(): Promise<number>;
}

/**
 * Starts the visualizer when `--viz` is given (or `always`, for the `viz` command); null otherwise.
 * The visualizer options without `--viz` are a mistake, said so.
 */
export async function startVizFromArgs(
  v: VizValues,
  say: (line: string) => void,
  defaults: { always?: boolean; keep?: boolean; break?: string[] } = {},
): Promise<VizRun | null> {
  const on = Boolean(v.viz) || defaults.always === true;
  if (!on) {
    const stray = (['port', 'host', 'break', 'viz-keep'] as const).filter((k) => v[k] !== undefined);
    if (stray.length) throw new ConfigError(`--${stray[0]} is a visualizer option: add --viz`);
    return null;
  }
  const port = intOption('port', v.port, DEFAULT_PORT, 0);
  if (port > 65535) throw new ConfigError(`--port must be an integer 0–65535, got "${v.port}"`);
  const given = v.break ?? defaults.break ?? [];
  const breaks = given.filter((b) => b !== 'none');
  const viz = new Visualizer({ port, ...(v.host !== undefined ? { host: v.host } : {}), break: breaks, stopOnSigint: true });
  const url = await viz.start();
  say(`visualizer: ${url}`);
  if (breaks.length) say(`visualizer: the run pauses at ${breaks.join(', ')}; resume or step it in the page`);
  let interrupted = false;
  viz.on('sigint', ({ duringRun, count }: { duringRun: boolean; count: number }) => {
    // Before the run (data still loading), Ctrl-C quits as it always does; after it, it ends the serving.
    if (!duringRun) return viz.status === 'idle' ? process.exit(130) : void viz.close();
    interrupted = true;
    if (count > 1) process.exit(130);
    say('visualizer: Ctrl-C: stopping the run through stopTraining (Ctrl-C again to quit at once)');
  });
  const keep = Boolean(v['viz-keep']) || defaults.keep === true;
  return {
    viz,
    async finish() {
      if (keep && !interrupted) {
        say(`visualizer: serving the finished run at ${url} until Ctrl-C`);
        await viz.serve();
      }
      await viz.close();
      return interrupted ? 130 : 0;
    },
  };
}

export function inspectWsFromArgs(v: VizValues): StatelyInspect | null {
  return v['inspect-ws'] === undefined ? null : createStatelyInspect(v['inspect-ws']);
}
