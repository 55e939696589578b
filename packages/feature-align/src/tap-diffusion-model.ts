/**
 * The `tapLayersModel` contract for `@fad/diffusion-core`'s U-Net (or any model with its
 * `forward({..., returnActivations})`): one forward pass returns the output and named activations.
 *
 * Tap points of `UNet2DConditional`: `conv_in`, `down.{i}`, `down_out` (output of the whole down
 * path, the paper's choice and the default), `mid`, `up.{i}`, and diffusers module paths such as
 * `down_blocks.2.resnets.0.conv_shortcut` (see its `activationNames()`).
 */
import type { UNetForwardParams, UNetForwardResult } from '@fad/diffusion-core';
import type { TapResult } from './tap-layers-model';
import { assertKnownKeys, assertParamsObject, describe, fail } from './validate';

/** The tap point of the paper: the U-Net's down-path output, before the mid block. */
export const DEFAULT_TAP = 'down_out';

/** What a tappable diffusion model offers (structural: `UNet2DConditional` fits). */
export interface TappableDiffusionModel {
  forward(params: UNetForwardParams): UNetForwardResult;
  /** Names `forward` accepts in `returnActivations`; used to check taps up front when present. */
  activationNames?(): string[];
}

export interface TapDiffusionModelParams {
  model: TappableDiffusionModel;
  /** Activation names to return (default `['down_out']`). */
  taps?: readonly string[];
}

export interface TappedDiffusionModel {
  readonly taps: readonly string[];
  /** One forward pass; `outputs` is `[sample]`, `activations` the tapped [B,H,W,C] maps. */
  run(params: Omit<UNetForwardParams, 'returnActivations'>): TapResult;
}

/** Throws, listing the available names, unless every tap is an activation of `model`. */
export function assertTapNames(where: string, model: TappableDiffusionModel, taps: readonly string[]): void {
  if (!Array.isArray(taps) || taps.length === 0 || taps.some((t) => typeof t !== 'string')) {
    fail(where, `taps must be a non-empty array of activation names, got ${describe(taps)}`, TypeError);
  }
  if (typeof model.activationNames !== 'function') return;
  const names = model.activationNames();
  for (const t of taps) {
    if (!names.includes(t)) fail(where, `the model has no activation "${t}"; available: ${names.join(', ')}`, RangeError);
  }
}

/** Wraps a U-Net so that `run` returns its output and the named activations in one pass. */
export function tapDiffusionModel(params: TapDiffusionModelParams): TappedDiffusionModel {
  const where = 'tapDiffusionModel';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['model', 'taps']);
  const { model, taps = [DEFAULT_TAP] } = params;
  if (model === null || typeof model !== 'object' || typeof model.forward !== 'function') {
    fail(where, `model must have forward({sample, timesteps, returnActivations}), got ${describe(model)}`, TypeError);
  }
  assertTapNames(where, model, taps);
  const list = [...taps];
  return {
    taps: list,
    run(p) {
      const r = model.forward({ ...p, returnActivations: list });
      return { outputs: [r.sample], activations: r.activations };
    },
  };
}
