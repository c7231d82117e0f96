import { ConfigError } from '../../src/errors.js';

/** The visualizer's port is taken: a ConfigError (the CLI exits 2) that says what to do. */
export class PortInUseError extends ConfigError {
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    super(`visualizer: port ${port} on ${host} is already in use; choose another with --port (or { port }), or --port 0 for any free port`);
  }
}

/** The server could not listen for another reason (no such address, a port below 1024, …). */
export function listenError(host: string, port: number, code: string, message: string): ConfigError {
  if (code === 'EADDRINUSE') return new PortInUseError(host, port);
  return new ConfigError(`visualizer: cannot listen on ${host}:${port} (${code}: ${message}); check --host and --port`);
}
