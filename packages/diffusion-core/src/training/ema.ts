/** Exponential moving average of weights (shadow = decay * shadow + (1 - decay) * weight). */
import * as tf from '@tensorflow/tfjs-core';

export class EmaWeights {
  readonly decay: number;
  private readonly source: tf.Variable[];
  private readonly shadow: tf.Variable[];

  constructor(variables: tf.Variable[], decay: number) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`emaDecay must be in (0, 1), got ${decay}`);
    this.decay = decay;
    this.source = variables;
    this.shadow = tf.tidy(() => variables.map((v) => tf.variable(v.clone(), false)));
  }

  update(): void {
    tf.tidy(() => {
      this.source.forEach((v, i) => {
        this.shadow[i].assign(tf.add(tf.mul(this.shadow[i], this.decay), tf.mul(v, 1 - this.decay)));
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
