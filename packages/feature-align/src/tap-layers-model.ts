/**
 * Taking intermediate activations out of any tfjs-layers model: a second model over the same
 * layers (weights shared, nothing copied) whose outputs are the original outputs followed by the
 * named layers' outputs, so one forward pass returns both.
 */
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ExpertInputSpec, FeatureExtractor, FeatureOptions } from './feature-extractor';
import { assertKnownKeys, assertParamsObject, assertPositiveInteger, describe, fail } from './validate';

export interface TapLayersModelParams {
  /** A built functional or sequential model. */
  model: tfl.LayersModel;
  /** Names of the layers whose outputs to return (see `model.layers[i].name`). */
  layers: readonly string[];
  /** Whether the tapped model also returns the original outputs first (default true). */
  includeOutputs?: boolean;
}

/** What a tapped forward pass returns. */
export interface TapResult {
  /** The model's own outputs, in order (empty with `includeOutputs: false`). */
  outputs: tf.Tensor[];
  /** The tapped activations by name. */
  activations: Record<string, tf.Tensor>;
}

export interface TappedLayersModel {
  /**
   * The model returning `[...original outputs, ...tapped activations]`. It shares the original's
   * layers and weights: do not `dispose()` it (that would dispose the original's layers too);
   * dispose the original model when done with both.
   */
  readonly model: tfl.LayersModel;
  /** The tapped layer names, in output order. */
  readonly layers: readonly string[];
  /**
   * One forward pass (eager). `training` (default false) is passed to every layer: keep it false
   * for a frozen model (inference-mode BatchNorm/Dropout); set it for a model being trained.
   */
  run(inputs: tf.Tensor | tf.Tensor[], options?: FeatureOptions): TapResult;
}

function assertBuilt(where: string, model: unknown): asserts model is tfl.LayersModel {
  const m = model as tfl.LayersModel;
  if (m === null || typeof m !== 'object' || !Array.isArray(m.layers) || typeof m.apply !== 'function') {
    fail(where, `model must be a tfjs-layers LayersModel (tf.model or tf.sequential), got ${describe(model)}`, TypeError);
  }
  if (!Array.isArray(m.inputs) || m.inputs.length === 0 || !Array.isArray(m.outputs) || m.outputs.length === 0) {
    fail(where, `model "${m.name}" is not built: give its first layer an inputShape (or build it) before tapping it`);
  }
}

/**
 * Wraps `model` so that one forward pass also returns the outputs of the named layers. Throws,
 * listing the model's layer names, when a name is unknown.
 */
export function tapLayersModel(params: TapLayersModelParams): TappedLayersModel {
  const where = 'tapLayersModel';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['model', 'layers', 'includeOutputs']);
  const { model, layers, includeOutputs = true } = params;
  assertBuilt(where, model);
  if (!Array.isArray(layers) || layers.some((n) => typeof n !== 'string')) {
    fail(where, `layers must be an array of layer names, got ${describe(layers)}`, TypeError);
  }
  if (layers.length === 0 && !includeOutputs) fail(where, 'nothing to return: layers is empty and includeOutputs is false', RangeError);
  if (new Set(layers).size !== layers.length) fail(where, `layers has duplicates: ${layers.join(', ')}`, RangeError);
  const available = model.layers.map((l) => l.name);
  const tapped: tfl.SymbolicTensor[] = [];
  for (const name of layers) {
    const layer = model.layers.find((l) => l.name === name);
    if (!layer) {
      fail(where, `model "${model.name}" has no layer "${name}"; available layers: ${available.join(', ')}`, RangeError);
    }
    let out: tfl.SymbolicTensor | tfl.SymbolicTensor[];
    try {
      out = layer.output;
    } catch (e) {
      fail(where, `layer "${name}" is used more than once in model "${model.name}", so its output is ambiguous (${(e as Error).message})`);
    }
    if (Array.isArray(out)) fail(where, `layer "${name}" has ${out.length} outputs; only single-output layers can be tapped`);
    tapped.push(out);
  }
  const original = includeOutputs ? model.outputs : [];
  const nOut = original.length;
  const tappedModel = tfl.model({ inputs: model.inputs, outputs: [...original, ...tapped], name: `${model.name}_tapped` });
  return {
    model: tappedModel,
    layers: [...layers],
    run(inputs, options = {}) {
      const result = tappedModel.apply(inputs, { training: options.training ?? false });
      const all = (Array.isArray(result) ? result : [result]) as tf.Tensor[];
      const activations: Record<string, tf.Tensor> = {};
      layers.forEach((n, i) => {
        activations[n] = all[nOut + i];
      });
      return { outputs: all.slice(0, nOut), activations };
    },
  };
}

export interface FeatureExtractorFromLayersModelParams {
  /** The expert: a built tfjs-layers model taking images [B,H,W,C]. */
  model: tfl.LayersModel;
  /** Layer whose output are the features (e.g. the global pooling layer); default the model's output. */
  layer?: string;
  /** Default: size and channels from the model's input shape, nothing else. */
  inputSpec?: ExpertInputSpec;
}

/** What {@link featureExtractorFromLayersModel} returns: a `FeatureExtractor` whose width is known. */
export interface LayersModelFeatureExtractor extends FeatureExtractor {
  /** Width D of the features, read from the model's output (or tapped layer's) shape. */
  readonly featureDim: number;
  readonly inputSpec: ExpertInputSpec;
}

/**
 * A `FeatureExtractor` over a tfjs-layers model (e.g. a classifier, taking the features of its
 * pooling layer). Forward passes run with `training: false` unless asked otherwise, so
 * BatchNormalization uses and keeps its moving statistics.
 */
export function featureExtractorFromLayersModel(params: FeatureExtractorFromLayersModelParams): LayersModelFeatureExtractor {
  const where = 'featureExtractorFromLayersModel';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['model', 'layer', 'inputSpec']);
  const { model, layer, inputSpec } = params;
  assertBuilt(where, model);
  if (model.inputs.length !== 1) fail(where, `model "${model.name}" has ${model.inputs.length} inputs; an expert takes one image input`);
  if (layer === undefined && model.outputs.length !== 1) {
    fail(where, `model "${model.name}" has ${model.outputs.length} outputs; name the feature layer with \`layer\``);
  }
  if (layer !== undefined && typeof layer !== 'string') fail(where, `layer must be a layer name, got ${describe(layer)}`, TypeError);
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4) fail(where, `model "${model.name}" takes input of shape [${inShape}]; an expert takes images [B,H,W,C]`);
  const tap = layer !== undefined ? tapLayersModel({ model, layers: [layer], includeOutputs: false }) : null;
  const outShape = tap ? tap.model.outputs[0].shape : model.outputs[0].shape;
  if (outShape.length !== 2 && outShape.length !== 4) {
    fail(where, `the features of model "${model.name}"${layer ? ` at layer "${layer}"` : ''} have shape [${outShape}]; expected [B,D] or [B,H,W,D]`);
  }
  const featureDim = outShape[outShape.length - 1];
  if (typeof featureDim !== 'number') {
    fail(where, `the feature width of model "${model.name}"${layer ? ` at layer "${layer}"` : ''} is not known from its shape [${outShape}]; wrap the model with featureExtractorFromFunction`);
  }
  assertPositiveInteger(where, 'feature width', featureDim);
  const [, h, w, c] = inShape;
  const spec: ExpertInputSpec =
    inputSpec ??
    {
      ...(typeof h === 'number' && typeof w === 'number' ? { size: [h, w] as [number, number] } : {}),
      ...(typeof c === 'number' ? { channels: c } : {}),
    };
  return {
    inputSpec: spec,
    featureDim,
    features(x, options = {}) {
      const training = options.training ?? false;
      if (tap) return tap.run(x, { training }).activations[layer as string] as tf.Tensor2D | tf.Tensor4D;
      return model.apply(x, { training }) as tf.Tensor2D | tf.Tensor4D;
    },
  };
}
