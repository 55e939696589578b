import { describe, expect, it } from 'vitest';
import * as api from './index';
import * as node from './node';

describe('@fad/feature-align/node exports', () => {
  it('holds the file functions, the experiment run and its report, which the browser-safe main entry point does not', () => {
    expect(Object.keys(node).sort()).toEqual([
      'DREAMBOOTH_ARMS', 'EXPERIMENT_VARIANTS', 'ExperimentRunError', 'ReportError', 'dreamBoothArmAlignment', 'loadFeatureAlignmentLoss', 'renderVegaLite', 'runAlignmentExperiment',
      'saveFeatureAlignmentLoss', 'variantAlignment', 'writeExperimentReport',
    ]);
    for (const name of Object.keys(node)) expect(name in api, name).toBe(false);
  });
});
