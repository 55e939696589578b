/**
 * Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), written out so that its state (moments
 * and step) can be saved in a checkpoint and restored exactly, and its learning rate set per step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamStep } from '../nn/fused';

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled weight decay (AdamW); 0 disables it. */
  weightDecay: number;
}

export const DEFAULT_ADAM_CONFIG: AdamConfig = {
  learningRate: 1e-4,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0,
};

export function resolveAdamConfig(partial: Partial<AdamConfig> = {}): AdamConfig {
  const c = { ...DEFAULT_ADAM_CONFIG, ...partial };
  for (const k of Object.keys(partial)) {
    if (!(k in DEFAULT_ADAM_CONFIG)) {
      throw new RangeError(`AdamConfig: unknown field "${k}"; accepted: ${Object.keys(DEFAULT_ADAM_CONFIG).join(', ')}`);
    }
  }
  const check = (k: keyof AdamConfig, ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`AdamConfig.${k} must be ${what}, got ${c[k]}`);
  };
  check('learningRate', c.learningRate > 0 && Number.isFinite(c.learningRate), 'a positive number');
  check('beta1', c.beta1 >= 0 && c.beta1 < 1, 'in [0, 1)');
  check('beta2', c.beta2 >= 0 && c.beta2 < 1, 'in [0, 1)');
  check('epsilon', c.epsilon > 0, 'positive');
  check('weightDecay', c.weightDecay >= 0, '>= 0');
  return c;
}

export interface AdamState {
  step: number;
  /** First and second moments per variable, in the variables' order. */
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  readonly config: AdamConfig;
  private readonly vars: tf.Variable[];
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(variables: tf.Variable[], config: Partial<AdamConfig> = {}) {
    this.config = resolveAdamConfig(config);
    this.vars = variables;
    // tidy frees the zero tensors; the variables (which copy them) are never tidied away.
    this.m = tf.tidy(() => variables.map((x) => tf.variable(tf.zerosLike(x), false)));
    this.v = tf.tidy(() => variables.map((x) => tf.variable(tf.zerosLike(x), false)));
  }

  get step(): number {
    return this.t;
  }

  /**
   * One update. `grads` are in the same order as the variables; `learningRate` overrides the
   * configured one for this step (learning-rate schedules).
   */
  apply(grads: tf.Tensor[], learningRate = this.config.learningRate): void {
    if (grads.length !== this.vars.length) {
      throw new Error(`Adam.apply: ${grads.length} gradients for ${this.vars.length} variables`);
    }
    this.t += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    // lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); eps is scaled so the update equals
    // lr * mhat / (sqrt(vhat) + eps) exactly (Kingma & Ba, Algorithm 1).
    const stepSize = (learningRate * Math.sqrt(bc2)) / bc1;
    const epsHat = epsilon * Math.sqrt(bc2);
    tf.tidy(() => {
      this.vars.forEach((x, i) => {
        const g = grads[i];
        // One FadAdam kernel per variable on backends that have it (@fad/tfjs-native).
        const fused = fusedAdamStep(x, g, this.m[i], this.v[i], { beta1, beta2, stepSize, epsHat, decay: learningRate * weightDecay });
        if (fused) {
          this.m[i].assign(fused[1]);
          this.v[i].assign(fused[2]);
          x.assign(fused[0]);
          return;
        }
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        let upd = tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), epsHat));
        if (weightDecay > 0) upd = tf.add(upd, tf.mul(x, learningRate * weightDecay));
        x.assign(tf.sub(x, upd));
      });
    });
  }

  getState(): AdamState {
    return {
      step: this.t,
      m: this.m.map((x) => x.dataSync() as Float32Array),
      v: this.v.map((x) => x.dataSync() as Float32Array),
    };
  }

  setState(state: AdamState): void {
    if (state.m.length !== this.vars.length || state.v.length !== this.vars.length) {
      throw new Error(`Adam.setState: state has ${state.m.length} moments for ${this.vars.length} variables`);
    }
    tf.tidy(() => {
      this.vars.forEach((x, i) => {
        if (state.m[i].length !== x.size || state.v[i].length !== x.size) {
          throw new Error(`Adam.setState: moment ${i} has ${state.m[i].length} values for a variable of shape [${x.shape}]`);
        }
        this.m[i].assign(tf.tensor(state.m[i], x.shape));
        this.v[i].assign(tf.tensor(state.v[i], x.shape));
      });
    });
    this.t = state.step;
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}
