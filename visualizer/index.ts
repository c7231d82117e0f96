/**
 * trainchart/visualizer — the live statechart of a run, in a local page, with a debugger.
 * The protocol is in docs/visualizer.md and visualizer/server/protocol.ts.
 */
export { Visualizer, DEFAULT_PORT, DEFAULT_STATE_INTERVAL_MS, loopMachineInfo, type VisualizerOptions, type SigintEvent } from './server/visualizer.js';
export { PortInUseError } from './server/errors.js';
export { parseBreakSpec, toBreakpoints, conditionHolds, CONDITION_FIELDS, CONDITION_OPS } from './server/breakpoints.js';
export { createStatelyInspect, type StatelyInspect, type StatelyInspectOptions } from './server/statelyInspect.js';
export * from './server/protocol.js';
