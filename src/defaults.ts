/**
 * Library-wide defaults for the options a Learner is made without, as fastai's `defaults`.
 * Its own module, importing nothing, so a test suite can set them in its setup file without
 * loading tfjs (test/support/quietProgress.ts turns progress off for every test Learner).
 */
export interface LearnerDefaults {
  /**
   * Does a Learner made without a `progress` option show progress (a `Progress` callback
   * writing to stderr, as fastai's default ProgressCallback)? Default true.
   */
  progress: boolean;
}

export const learnerDefaults: LearnerDefaults = { progress: true };
