import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import * as schedulers from './index';
import { DDIMScheduler, DDPMScheduler, SCHEDULER_CLASS_NAMES, schedulerFromConfig } from './index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('schedulers barrel', () => {
  it('exports exactly the documented runtime names', () => {
    expect(Object.keys(schedulers).sort()).toEqual(
      [
        'BASE_SCHEDULER_DEFAULTS',
        'DDIMScheduler',
        'DDIM_SCHEDULER_DEFAULTS',
        'DDPMScheduler',
        'DDPM_SCHEDULER_DEFAULTS',
        'PREDICTION_TYPES',
        'SCHEDULER_CLASS_NAMES',
        'TIMESTEP_SPACINGS',
        'VARIANCE_TYPES',
        'alphasCumprodFromBetas',
        'betaScheduleNames',
        'betasForAlphaBar',
        'inferenceTimesteps',
        'makeBetas',
        'registerBetaSchedule',
        'rescaleZeroTerminalSnr',
        'schedulerFromConfig',
        'unregisterBetaSchedule',
      ].sort(),
    );
  });
});

describe('schedulerFromConfig', () => {
  it('rebuilds each scheduler class from its toJSON output', () => {
    const ddpm = new DDPMScheduler({ betaSchedule: 'squaredcos_cap_v2', varianceType: 'fixed_large' });
    const ddim = new DDIMScheduler({ predictionType: 'v_prediction', setAlphaToOne: false });
    const a = schedulerFromConfig(JSON.parse(JSON.stringify(ddpm.toJSON())));
    const b = schedulerFromConfig(ddim.toJSON());
    expect(a).toBeInstanceOf(DDPMScheduler);
    expect(b).toBeInstanceOf(DDIMScheduler);
    expect(a.toJSON()).toEqual(ddpm.toJSON());
    expect(b.toJSON()).toEqual(ddim.toJSON());
    expect(SCHEDULER_CLASS_NAMES).toEqual(['DDPMScheduler', 'DDIMScheduler']);
  });

  it('rejects a missing or unknown _class and non-objects', () => {
    expect(() => schedulerFromConfig({ numTrainTimesteps: 10 })).toThrow(
      'schedulerFromConfig: config._class must be one of DDPMScheduler, DDIMScheduler, got undefined',
    );
    expect(() => schedulerFromConfig({ _class: 'PNDMScheduler' })).toThrow(
      'schedulerFromConfig: config._class must be one of DDPMScheduler, DDIMScheduler, got "PNDMScheduler"',
    );
    expect(() => schedulerFromConfig([])).toThrow(/expected a scheduler config object, got an array of length 0/);
  });

  it('passes config errors through from the chosen class', () => {
    expect(() => schedulerFromConfig({ _class: 'DDIMScheduler', betaSchedule: 'cosine' })).toThrow(
      'DDIMScheduler: config.betaSchedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "cosine"',
    );
  });
});
