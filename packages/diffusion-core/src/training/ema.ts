/** Exponential moving average of weights (shadow = decay * shadow + (1 - decay) * weight). */
import * as tf from '@tensorflow/tfjs-core';

export interface EmaOptions {
  /**
   * Decay warm-up as in diffusers' `EMAModel` (without `use_ema_warmup`): at the n-th update the decay
   * is min(decay, (1 + s) / (10 + s)) with s = n - 1, and 0 at the first update (the shadow starts as
   * the weights). Without it the shadow keeps decay^n of the initial weights after n updates (61% at
   * n = 500 with decay 0.999), so early EMA samples show the initialisation. Default false.
   */
  warmup?: boolean;
}

export class EmaWeights {
  readonly decay: number;
  readonly warmup: boolean;
  private readonly source: tf.Variable[];
  private readonly shadow: tf.Variable[];

  constructor(variables: tf.Variable[], decay: number, options: EmaOptions = {}) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`emaDecay must be in (0, 1), got ${decay}`);
    if (options.warmup !== undefined && typeof options.warmup !== 'boolean') throw new TypeError(`EmaWeights: options.warmup must be a boolean, got ${String(options.warmup)}`);
    this.decay = decay;
    this.warmup = options.warmup ?? false;
    this.source = variables;
    this.shadow = tf.tidy(() => variables.map((v) => tf.variable(v.clone(), false)));
  }

  /** The decay applied at the `step`-th update (1-based): `decay`, or with warm-up min(decay, (1 + s) / (10 + s)), s = step - 1 (0 at step 1). */
  decayAt(step: number): number {
    if (!this.warmup) return this.decay;
    if (!Number.isInteger(step) || step < 1) throw new RangeError(`EmaWeights.decayAt: step must be an integer >= 1 (the update's 1-based number), got ${step}`);
    const s = step - 1;
    return s <= 0 ? 0 : Math.min(this.decay, (1 + s) / (10 + s));
  }

  /**
   * One EMA update after an optimisation step. `step` (1-based, the optimiser's step count after the
   * update) is needed with warm-up, so that a resumed run continues the same decay sequence.
   */
  update(p: { step?: number } = {}): void {
    if (this.warmup && p.step === undefined) throw new TypeError('EmaWeights.update: with warmup the step (1-based) is required');
    const d = p.step === undefined ? this.decay : this.decayAt(p.step);
    tf.tidy(() => {
      this.source.forEach((v, i) => {
        this.shadow[i].assign(tf.add(tf.mul(this.shadow[i], d), tf.mul(v, 1 - d)));
      });
    });
  }

  /** Writes the averaged weights into `targets` (same order and shapes as the source variables). */
  copyTo(targets: tf.Variable[]): void {
    if (targets.length !== this.shadow.length) {
      throw new Error(`EmaWeights.copyTo: ${targets.length} targets for ${this.shadow.length} averaged variables`);
    }
    targets.forEach((t, i) => t.assign(this.shadow[i]));
  }

  getState(): Float32Array[] {
    return this.shadow.map((s) => s.dataSync() as Float32Array);
  }

  setState(values: Float32Array[]): void {
    if (values.length !== this.shadow.length) throw new Error('EmaWeights.setState: wrong number of tensors');
    tf.tidy(() => this.shadow.forEach((s, i) => s.assign(tf.tensor(values[i], s.shape))));
  }

  dispose(): void {
    this.shadow.forEach((s) => s.dispose());
  }
}
