/**
 * vitest setupFiles: test Learners draw no progress bars. A Learner shows progress by default
 * (as fastai's); here that default is turned off once, explicitly, for the whole suite, so a
 * test output holds only what the tests print. A test that checks the default sets it back
 * (test/progress-default.test.ts); `progress: true` on one Learner turns it on for that one.
 */
import { learnerDefaults } from '../../src/defaults.js';

learnerDefaults.progress = false;
