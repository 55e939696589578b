/**
 * Schedulers by short name, for configs and command lines ("ddim", "dpm-solver++", ...): built-in
 * names plus any registered with `registerScheduler`. The registry is process-wide.
 */
import { DDIMScheduler } from './ddim-scheduler';
import { DDPMScheduler } from './ddpm-scheduler';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep-scheduler';
import type { NoiseScheduler } from './scheduler';
import { describeValue } from './timesteps';

/** Builds a scheduler from a (partial) config object; it should validate the config and throw on bad fields. */
export type SchedulerFactory = (config: Record<string, unknown>) => NoiseScheduler;

/**
 * The built-in scheduler names:
 * - `ddpm`: {@link DDPMScheduler} (ancestral sampling, Ho et al. 2020);
 * - `ddim`: {@link DDIMScheduler} (Song et al. 2021);
 * - `dpm-solver++`: {@link DPMSolverMultistepScheduler} with algorithmType "dpmsolver++" (DPM-Solver++(2M)
 *   by default, Lu et al. 2022);
 * - `dpm-solver`: {@link DPMSolverMultistepScheduler} with algorithmType "dpmsolver" (the noise-prediction
 *   solver; finalSigmasType defaults to "sigma_min", the only final sigma it supports).
 */
export const BUILTIN_SCHEDULER_NAMES = ['ddim', 'ddpm', 'dpm-solver++', 'dpm-solver'] as const;

/** One of {@link BUILTIN_SCHEDULER_NAMES}. */
export type BuiltinSchedulerName = (typeof BUILTIN_SCHEDULER_NAMES)[number];

/** A DPM-Solver factory that fixes algorithmType, rejecting a config that asks for the other one. */
function dpmSolver(name: string, algorithmType: 'dpmsolver++' | 'dpmsolver', defaults: Record<string, unknown>): SchedulerFactory {
  return (config) => {
    const given = config.algorithmType;
    if (given !== undefined && given !== algorithmType) {
      throw new TypeError(
        `schedulerFromName: config.algorithmType must be "${algorithmType}" (or absent) for "${name}", got ${describeValue(given)}`,
      );
    }
    return new DPMSolverMultistepScheduler({ ...defaults, ...config, algorithmType } as never);
  };
}

const BUILT_IN: ReadonlyMap<string, SchedulerFactory> = new Map<BuiltinSchedulerName, SchedulerFactory>([
  ['ddim', (config) => new DDIMScheduler(config as never)],
  ['ddpm', (config) => new DDPMScheduler(config as never)],
  ['dpm-solver++', dpmSolver('dpm-solver++', 'dpmsolver++', {})],
  ['dpm-solver', dpmSolver('dpm-solver', 'dpmsolver', { finalSigmasType: 'sigma_min' })],
]);

const registry = new Map<string, SchedulerFactory>(BUILT_IN);

/**
 * Adds a named scheduler that `schedulerFromName` can then build.
 * @throws TypeError if the name is empty or `factory` is not a function.
 * @throws Error if the name is already registered (built-in or custom); unregister it first.
 */
export function registerScheduler(name: string, factory: SchedulerFactory): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`registerScheduler: name must be a non-empty string, got ${describeValue(name)}`);
  }
  if (typeof factory !== 'function') {
    throw new TypeError(`registerScheduler: factory must be a function (config) => NoiseScheduler, got ${typeof factory}`);
  }
  if (registry.has(name)) throw new Error(`registerScheduler: a scheduler named "${name}" is already registered`);
  registry.set(name, factory);
}

/**
 * Removes a custom scheduler name. Returns whether one was removed.
 * @throws Error for the built-in names, which cannot be removed.
 */
export function unregisterScheduler(name: string): boolean {
  if (BUILT_IN.has(name)) throw new Error(`unregisterScheduler: "${name}" is a built-in scheduler and cannot be removed`);
  return registry.delete(name);
}

/** Every registered scheduler name: the built-ins first, then custom ones in registration order. */
export function schedulerNames(): string[] {
  return [...registry.keys()];
}

/** Parameters of {@link schedulerFromName}. */
export interface SchedulerFromNameParams {
  /** A registered name, see {@link schedulerNames}. */
  name: string;
  /** The scheduler's config (any subset; missing fields take its defaults). */
  config?: Record<string, unknown>;
}

/**
 * Builds the scheduler registered under `name` with `config`.
 * @throws TypeError if params or config is not an object; RangeError for an unknown name; otherwise as
 *   the scheduler's constructor does (errors name the config field).
 */
export function schedulerFromName(params: SchedulerFromNameParams): NoiseScheduler {
  if (params === null || typeof params !== 'object') {
    throw new TypeError(`schedulerFromName: params must be an object { name, config }, got ${describeValue(params)}`);
  }
  const { name, config = {} } = params;
  const factory = typeof name === 'string' ? registry.get(name) : undefined;
  if (!factory) {
    throw new RangeError(`schedulerFromName: name must be one of ${schedulerNames().join(', ')}, got ${describeValue(name)}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`schedulerFromName: config must be a plain object, got ${describeValue(config)}`);
  }
  return factory(config);
}
