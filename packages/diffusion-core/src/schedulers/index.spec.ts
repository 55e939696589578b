import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import * as schedulers from './index';
import {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  type NoiseScheduler,
  registerScheduler,
  SCHEDULER_CLASS_NAMES,
  schedulerFromConfig,
  schedulerFromName,
  schedulerNames,
  unregisterScheduler,
} from './index';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('schedulers barrel', () => {
  it('exports exactly the documented runtime names', () => {
    expect(Object.keys(schedulers).sort()).toEqual(
      [
        'BASE_SCHEDULER_DEFAULTS',
        'BUILTIN_BETA_SCHEDULE_NAMES',
        'BUILTIN_SCHEDULER_NAMES',
        'DDIMScheduler',
        'DDIM_SCHEDULER_DEFAULTS',
        'DDPMScheduler',
        'DDPM_SCHEDULER_DEFAULTS',
        'DPMSolverMultistepScheduler',
        'DPM_FINAL_SIGMAS_TYPES',
        'DPM_SOLVER_ALGORITHM_TYPES',
        'DPM_SOLVER_MULTISTEP_SCHEDULER_DEFAULTS',
        'DPM_SOLVER_TYPES',
        'PREDICTION_TYPES',
        'SCHEDULER_CLASS_NAMES',
        'TIMESTEP_SPACINGS',
        'VARIANCE_TYPES',
        'alphasCumprodFromBetas',
        'betaScheduleNames',
        'betasForAlphaBar',
        'inferenceTimesteps',
        'dpmSolverTimesteps',
        'makeBetas',
        'registerBetaSchedule',
        'registerScheduler',
        'rescaleZeroTerminalSnr',
        'schedulerFromConfig',
        'schedulerFromName',
        'schedulerNames',
        'supportsGuidedStep',
        'unregisterBetaSchedule',
        'unregisterScheduler',
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
    expect(SCHEDULER_CLASS_NAMES).toEqual(['DDPMScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler']);
  });

  it('rejects a missing or unknown _class and non-objects', () => {
    expect(() => schedulerFromConfig({ numTrainTimesteps: 10 })).toThrow(
      'schedulerFromConfig: config._class must be one of DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, got undefined',
    );
    expect(() => schedulerFromConfig({ _class: 'PNDMScheduler' })).toThrow(
      'schedulerFromConfig: config._class must be one of DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, got "PNDMScheduler"',
    );
    expect(() => schedulerFromConfig([])).toThrow(/expected a scheduler config object, got an array of length 0/);
  });

  it('passes config errors through from the chosen class', () => {
    expect(() => schedulerFromConfig({ _class: 'DDIMScheduler', betaSchedule: 'cosine' })).toThrow(
      'DDIMScheduler: config.betaSchedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "cosine"',
    );
  });
});

describe('schedulerFromName / registerScheduler', () => {
  it('builds the built-in names with their config', () => {
    expect(schedulerNames()).toEqual(['ddim', 'ddpm', 'dpm-solver++', 'dpm-solver']);
    const cfg = { numTrainTimesteps: 100, predictionType: 'v_prediction' };
    const ddim = schedulerFromName({ name: 'ddim', config: cfg });
    expect(ddim).toBeInstanceOf(DDIMScheduler);
    expect(ddim.toJSON()).toEqual(new DDIMScheduler(cfg as never).toJSON());
    expect(schedulerFromName({ name: 'ddpm' })).toBeInstanceOf(DDPMScheduler);
    const pp = schedulerFromName({ name: 'dpm-solver++', config: cfg }) as DPMSolverMultistepScheduler;
    expect(pp).toBeInstanceOf(DPMSolverMultistepScheduler);
    expect(pp.config).toMatchObject({ algorithmType: 'dpmsolver++', finalSigmasType: 'zero', numTrainTimesteps: 100, predictionType: 'v_prediction' });
    const p = schedulerFromName({ name: 'dpm-solver', config: {} }) as DPMSolverMultistepScheduler;
    expect(p.config).toMatchObject({ algorithmType: 'dpmsolver', finalSigmasType: 'sigma_min' });
    // The built scheduler round-trips by class.
    expect(schedulerFromConfig(JSON.parse(JSON.stringify(p.toJSON()))).toJSON()).toEqual(p.toJSON());
  });

  it('rejects unknown names, conflicting configs and bad fields, naming them', () => {
    expect(() => schedulerFromName({ name: 'euler' })).toThrow('schedulerFromName: name must be one of ddim, ddpm, dpm-solver++, dpm-solver, got "euler"');
    expect(() => schedulerFromName({ name: 'ddim', config: [] as never })).toThrow(/config must be a plain object, got an array/);
    expect(() => schedulerFromName({ name: 'dpm-solver++', config: { algorithmType: 'dpmsolver' } })).toThrow(
      /config\.algorithmType must be "dpmsolver\+\+" \(or absent\) for "dpm-solver\+\+", got "dpmsolver"/,
    );
    expect(() => schedulerFromName({ name: 'dpm-solver++', config: { solverOrder: 5 } })).toThrow(/DPMSolverMultistepScheduler: config\.solverOrder must be one of 1, 2, 3, got 5/);
    expect(() => schedulerFromName({ name: 'ddim', config: { solverOrder: 2 } })).toThrow(/DDIMScheduler: unknown config key "solverOrder"/);
  });

  it('registers and unregisters custom names; built-ins stay', () => {
    const factory = (config: Record<string, unknown>): NoiseScheduler => new DDIMScheduler({ ...config, setAlphaToOne: false });
    registerScheduler('ddim-sd', factory);
    try {
      expect(schedulerNames()).toEqual(['ddim', 'ddpm', 'dpm-solver++', 'dpm-solver', 'ddim-sd']);
      expect((schedulerFromName({ name: 'ddim-sd' }) as DDIMScheduler).config.setAlphaToOne).toBe(false);
      expect(() => registerScheduler('ddim-sd', factory)).toThrow(/already registered/);
      expect(() => registerScheduler('', factory)).toThrow(/name must be a non-empty string/);
      expect(() => registerScheduler('x', 3 as never)).toThrow(/factory must be a function/);
    } finally {
      expect(unregisterScheduler('ddim-sd')).toBe(true);
    }
    expect(unregisterScheduler('ddim-sd')).toBe(false);
    expect(() => unregisterScheduler('ddim')).toThrow(/built-in scheduler and cannot be removed/);
  });
});
