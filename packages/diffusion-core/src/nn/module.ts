/**
 * A minimal module system over tfjs-core: a module owns named `tf.Variable`s and child modules,
 * and exposes them under dotted names (`down_res.0.conv1.weight`), the way PyTorch does. The names
 * are the keys of saved weight files (safetensors), so they are part of the public format.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../register-gradients';

export abstract class Module {
  private readonly params = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();
  private disposed = false;

  /** Registers a parameter. The tensor is taken over (not copied) and becomes a variable. */
  protected addParameter(name: string, value: tf.Tensor, trainable = true): tf.Variable {
    if (this.params.has(name) || this.children.has(name)) {
      throw new Error(`${this.constructor.name}: duplicate member name "${name}"`);
    }
    // No explicit variable name: tfjs requires names to be unique per process, and several models
    // may live side by side (student, EMA, expert). Our dotted names live in this map instead.
    const v = tf.variable(value, trainable);
    value.dispose();
    this.params.set(name, v);
    return v;
  }

  /** Registers a child module under `name` and returns it. */
  protected addModule<M extends Module>(name: string, module: M): M {
    if (this.params.has(name) || this.children.has(name)) {
      throw new Error(`${this.constructor.name}: duplicate member name "${name}"`);
    }
    this.children.set(name, module);
    return module;
  }

  /** All parameters under dotted names, in registration order (depth first). */
  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    const out: Array<[string, tf.Variable]> = [];
    for (const [n, v] of this.params) out.push([prefix + n, v]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** The trainable variables, for an optimizer. */
  trainableVariables(): tf.Variable[] {
    return this.namedParameters()
      .map(([, v]) => v)
      .filter((v) => v.trainable);
  }

  /** Total number of scalar parameters. */
  numParameters(): number {
    return this.namedParameters().reduce((s, [, v]) => s + v.size, 0);
  }

  /** Marks every parameter trainable or frozen. Frozen variables get no gradient in training. */
  setTrainable(trainable: boolean): void {
    for (const [, v] of this.namedParameters()) v.trainable = trainable;
  }

  /** Copies of all parameters as plain typed arrays, keyed by dotted name. */
  stateDict(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [n, v] of this.namedParameters()) {
      out[n] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
    }
    return out;
  }

  /**
   * Loads parameters by dotted name. With `strict` (default) every parameter must be present and no
   * extra key may appear; shapes must always match. Nothing is assigned unless everything checks.
   */
  loadStateDict(
    state: Record<string, { shape: readonly number[]; data: Float32Array }>,
    options: { strict?: boolean } = {},
  ): void {
    const strict = options.strict ?? true;
    const named = this.namedParameters();
    const problems: string[] = [];
    const known = new Set(named.map(([n]) => n));
    for (const [n, v] of named) {
      const s = state[n];
      if (!s) {
        if (strict) problems.push(`missing "${n}" (expected shape [${v.shape}])`);
        continue;
      }
      if (s.shape.length !== v.shape.length || s.shape.some((d, i) => d !== v.shape[i])) {
        problems.push(`"${n}": shape [${s.shape}] does not match the model's [${v.shape}]`);
      } else if (s.data.length !== v.size) {
        problems.push(`"${n}": ${s.data.length} values for shape [${v.shape}]`);
      }
    }
    if (strict) {
      for (const k of Object.keys(state)) if (!known.has(k)) problems.push(`unexpected "${k}"`);
    }
    if (problems.length > 0) {
      const head = problems.slice(0, 10).join('; ');
      const more = problems.length > 10 ? ` (+${problems.length - 10} more)` : '';
      throw new Error(`${this.constructor.name}.loadStateDict: ${head}${more}`);
    }
    for (const [n, v] of named) {
      const s = state[n];
      if (s) tf.tidy(() => v.assign(tf.tensor(s.data, v.shape, 'float32')));
    }
  }

  /** Copies every parameter value from another module of the same structure. */
  copyFrom(other: Module): void {
    const mine = this.namedParameters();
    const theirs = other.namedParameters();
    if (mine.length !== theirs.length || mine.some(([n], i) => n !== theirs[i][0])) {
      throw new Error(`${this.constructor.name}.copyFrom: the two modules have different parameters`);
    }
    mine.forEach(([, v], i) => v.assign(theirs[i][1]));
  }

  /** Frees every variable. The module cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
    for (const m of this.children.values()) m.dispose();
  }
}
