/**
 * The layering of trainchart, as a ladder (each rung may import only rungs below it):
 *
 *   machines/            the loop machine: xstate only
 *   src/loop/            driver, hook table, context, Callback, LearnerApi        (+ src/errors.ts)
 *   core                 src/ engine, data, optim, models, io, plot, backend, …    (everything else in src/)
 *   callbacks/           one callback per file, on the loop's public API and the core
 *   façade               src/learner.ts, its recipes (lrFind, oneCycle), dryRun, fitOptions
 *   top                  src/cli/, visualizer/, and the package entry src/index.ts (it re-exports every rung)
 *
 * `tsPreCompilationDeps: true` makes type-only imports count: a circle of `import type` is still
 * a circle a reader has to untangle, and it is what let the Learner leak into the callbacks.
 * Checked by test/layering.test.ts (in `npm test`), which also proves each rule fires.
 */
const FACADE = '^src/(learner|lrFind|oneCycle|dryRun|fitOptions)\\.ts$';
const TOP = '^(src/cli/|visualizer/|src/index\\.ts$)';
const CORE = '^src/(?!loop/|cli/|(learner|lrFind|oneCycle|dryRun|fitOptions|index)\\.ts$)';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'The import graph is a ladder: no circles, type-only imports included.', from: {}, to: { circular: true } },
    {
      name: 'machines-only-xstate',
      severity: 'error',
      comment: 'machines/ is the loop definition: it imports xstate and itself, nothing else.',
      from: { path: '^machines/' },
      to: { pathNot: ['^machines/', '(^|/)node_modules/xstate/'] },
    },
    {
      name: 'loop-on-machines-only',
      severity: 'error',
      comment: 'src/loop/ builds on machines/ (and the typed errors); the core, callbacks and the Learner sit above it.',
      from: { path: '^src/loop/' },
      to: { path: '^(src/|callbacks/|visualizer/)', pathNot: ['^src/loop/', '^src/errors\\.ts$'] },
    },
    {
      name: 'core-below-callbacks',
      severity: 'error',
      comment: 'The core never imports callbacks/, the Learner façade or the CLI/visualizer.',
      from: { path: CORE },
      to: { path: ['^callbacks/', FACADE, TOP] },
    },
    {
      name: 'callbacks-below-learner',
      severity: 'error',
      comment: 'Callbacks program against LearnerApi (src/loop/learnerApi.ts), never the Learner, not even as a type.',
      from: { path: '^callbacks/' },
      to: { path: [FACADE, TOP] },
    },
    {
      name: 'facade-below-top',
      severity: 'error',
      comment: 'The Learner and its recipes run without a UI: they never import the CLI or the visualizer.',
      from: { path: FACADE },
      to: { path: TOP },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: ['^dist/', '^test/', '^node_modules/'] },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
