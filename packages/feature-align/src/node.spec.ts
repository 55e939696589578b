import { describe, expect, it } from 'vitest';
import * as api from './index';
import * as node from './node';

describe('@fad/feature-align/node exports', () => {
  it('holds the file functions and the experiment report, which the browser-safe main entry point does not', () => {
    expect(Object.keys(node).sort()).toEqual(['ReportError', 'loadFeatureAlignmentLoss', 'renderVegaLite', 'saveFeatureAlignmentLoss', 'writeExperimentReport']);
    for (const name of Object.keys(node)) expect(name in api, name).toBe(false);
  });
});
