export * from './stages.js';
export * from './controls.js';
export * from './trainLoop.js';
export * from './describe.js';
export * from './work.js';
export * from './resume.js';
