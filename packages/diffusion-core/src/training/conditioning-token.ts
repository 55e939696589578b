/**
 * Adding a conditioning token to a trained class-conditional U-Net: the identifier DreamBooth
 * (Ruiz et al. 2023) binds a few images to. The token is a new row of conditioning embedding
 * (`token_emb.weight`, after the class table), initialised as a copy of one class's embedding, so
 * right after creation the model treats the token exactly like that class. Its label comes after
 * the classes and the null class (`numClasses + (nullClass ? 1 : 0) + i`): existing labels, the
 * null class of classifier-free guidance included, keep their meaning. The token is part of the
 * config (`conditioningTokens`) and its row part of the weights, so it saves and loads with
 * `saveUNet` / `loadUNet` like any other parameter.
 */
import { UNet2DConditional } from '../unet/unet';
import { conditioningTokenLabel } from '../unet/unet-config';

export interface AddConditioningTokenParams {
  /** A trained class-conditional U-Net (numClasses > 0). Not modified and not disposed. */
  model: UNet2DConditional;
  /** The class (0..numClasses-1) whose embedding initialises the token. */
  fromClass: number;
  /** Name of the token, unique among the model's tokens (e.g. `sks`). */
  name: string;
}

export interface AddConditioningTokenResult {
  /** A new U-Net with every weight of `model` plus the token; the caller disposes it. */
  model: UNet2DConditional;
  /** The token's class label (what `forward`, the trainer and `sampleImages` take). */
  label: number;
}

/** Returns a copy of `model` with one more conditioning token initialised from class `fromClass`. */
export function addConditioningToken(params: AddConditioningTokenParams): AddConditioningTokenResult {
  if (!params || typeof params !== 'object') throw new TypeError('addConditioningToken: expected a params object { model, fromClass, name }');
  const { model, fromClass, name } = params;
  if (!(model instanceof UNet2DConditional)) throw new TypeError('addConditioningToken: params.model must be a UNet2DConditional');
  const c = model.config;
  if (c.numClasses === 0) throw new RangeError('addConditioningToken: params.model is unconditional (numClasses 0); a token needs a class embedding to start from');
  if (!Number.isInteger(fromClass) || fromClass < 0 || fromClass >= c.numClasses) {
    throw new RangeError(`addConditioningToken: params.fromClass must be a class index in 0..${c.numClasses - 1}, got ${JSON.stringify(fromClass)}`);
  }
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`addConditioningToken: params.name must be a non-empty string, got ${JSON.stringify(name)}`);
  const tokens = c.conditioningTokens ?? [];
  if (tokens.some((t) => t.name === name)) throw new RangeError(`addConditioningToken: params.name "${name}" is already a token of the model`);

  const state = model.stateDict();
  const classTable = state['class_emb.weight'];
  // The embeddings' width (classEmbeddingDim when they are mapped to crossAttentionDim by class_proj).
  const dim = classTable.shape[1];
  const oldTokens = state['token_emb.weight'];
  const rows = new Float32Array((tokens.length + 1) * dim);
  if (oldTokens) rows.set(oldTokens.data);
  rows.set(classTable.data.subarray(fromClass * dim, (fromClass + 1) * dim), tokens.length * dim);
  state['token_emb.weight'] = { shape: [tokens.length + 1, dim], data: rows };

  const out = new UNet2DConditional({ ...c, conditioningTokens: [...tokens, { name, fromClass }] });
  try {
    out.loadStateDict(state);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return { model: out, label: conditioningTokenLabel({ config: out.config, name }) };
}
