/**
 * ResNet (He et al. 2016) in torchvision's layout and naming, v1.5 (the stride of a downsampling
 * bottleneck sits on its 3x3 convolution):
 *
 * stem `conv1` 7x7/2 pad 3 -> `bn1` -> ReLU -> max pool 3x3/2 pad 1 (PyTorch's -inf padding), then
 * stages `layer1..layerN` of basic blocks (ResNet18/34) or bottlenecks (ResNet50+), global average
 * pooling (the features) and the head `fc`. Parameter names are torchvision's
 * (`layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, `bn1.running_mean`, `fc.weight`, ...);
 * weights are in TensorFlow layout (Conv2d HWIO, Linear [in, out]).
 *
 * Initialisation as torchvision: convolutions Kaiming-normal (fan_out, ReLU gain), BatchNorm weight
 * 1 / bias 0, the head PyTorch's default Linear init; all drawn from the seeded generator.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Generator, Module } from '@fad/diffusion-core';
import { BatchNorm2d } from './batch-norm-2d';
import { ClassifierHead } from './classifier-head';
import type { ExpertConfigInput, ResNetConfig } from './expert-config';
import { ExpertModel } from './expert-model';
import { maxPool2d } from './max-pool-2d';
import { assertBoolean, assertInt } from './validate';
import { ZERO_GENERATOR, kaimingNormalFanOut } from './weight-init';

/** The convolution owning each weight variable (for `ResNet.convolutions`). */
const CONV_OF_WEIGHT = new WeakMap<tf.Variable, Conv2d>();

/** A bias-free convolution with Kaiming-normal (fan_out, ReLU) weights (zeros with ZERO_GENERATOR). */
function convKaiming(generator: Generator, inChannels: number, outChannels: number, kernelSize: number, stride: number): Conv2d {
  const conv = new Conv2d({ inChannels, outChannels, kernelSize, stride, padding: (kernelSize - 1) / 2, bias: false, generator: ZERO_GENERATOR });
  if (generator !== ZERO_GENERATOR) {
    tf.tidy(() => conv.weight.assign(kaimingNormalFanOut(generator, conv.weight.shape as [number, number, number, number])));
  }
  CONV_OF_WEIGHT.set(conv.weight, conv);
  return conv;
}

/** 1x1 convolution + BatchNorm on the shortcut when shape changes (`downsample.0`, `downsample.1`). */
class Downsample extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(generator: Generator, inChannels: number, outChannels: number, stride: number) {
    super();
    this.conv = this.addModule('0', convKaiming(generator, inChannels, outChannels, 1, stride));
    this.bn = this.addModule('1', new BatchNorm2d({ numFeatures: outChannels }));
  }
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return tf.tidy(() => this.bn.forward(this.conv.forward(x), { training }));
  }
}

/** A residual block (basic or bottleneck). */
abstract class ResidualBlock extends Module {
  protected downsample: Downsample | null = null;
  protected abstract residual(x: tf.Tensor4D, training: boolean): tf.Tensor4D;
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      const identity = this.downsample ? this.downsample.forward(x, training) : x;
      return tf.relu(tf.add(this.residual(x, training), identity)) as tf.Tensor4D;
    });
  }
}

/** Two 3x3 convolutions (ResNet18/34); expansion 1. */
class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  constructor(generator: Generator, inPlanes: number, planes: number, stride: number, _widthPerGroup = 64) {
    super();
    this.conv1 = this.addModule('conv1', convKaiming(generator, inPlanes, planes, 3, stride));
    this.bn1 = this.addModule('bn1', new BatchNorm2d({ numFeatures: planes }));
    this.conv2 = this.addModule('conv2', convKaiming(generator, planes, planes, 3, 1));
    this.bn2 = this.addModule('bn2', new BatchNorm2d({ numFeatures: planes }));
    if (stride !== 1 || inPlanes !== planes) this.downsample = this.addModule('downsample', new Downsample(generator, inPlanes, planes, stride));
  }
  protected residual(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    const h = this.bn1.forward(this.conv1.forward(x), { training, relu: true });
    return this.bn2.forward(this.conv2.forward(h), { training });
  }
}

/**
 * 1x1 reduce, 3x3 (carrying the stride, v1.5), 1x1 expand x4. The inner width is torchvision's
 * `int(planes * (width_per_group / 64))` (= planes for ResNet50/101/152).
 */
class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly conv3: Conv2d;
  private readonly bn3: BatchNorm2d;
  constructor(generator: Generator, inPlanes: number, planes: number, stride: number, widthPerGroup = 64) {
    super();
    const out = planes * Bottleneck.expansion;
    const width = Math.floor(planes * (widthPerGroup / 64));
    this.conv1 = this.addModule('conv1', convKaiming(generator, inPlanes, width, 1, 1));
    this.bn1 = this.addModule('bn1', new BatchNorm2d({ numFeatures: width }));
    this.conv2 = this.addModule('conv2', convKaiming(generator, width, width, 3, stride));
    this.bn2 = this.addModule('bn2', new BatchNorm2d({ numFeatures: width }));
    this.conv3 = this.addModule('conv3', convKaiming(generator, width, out, 1, 1));
    this.bn3 = this.addModule('bn3', new BatchNorm2d({ numFeatures: out }));
    if (stride !== 1 || inPlanes !== out) this.downsample = this.addModule('downsample', new Downsample(generator, inPlanes, out, stride));
  }
  protected residual(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    const h1 = this.bn1.forward(this.conv1.forward(x), { training, relu: true });
    const h2 = this.bn2.forward(this.conv2.forward(h1 as tf.Tensor4D), { training, relu: true });
    return this.bn3.forward(this.conv3.forward(h2 as tf.Tensor4D), { training });
  }
}

/** One stage: blocks registered as `0`, `1`, ... */
class Stage extends Module {
  readonly blocks: ResidualBlock[] = [];
  add(block: ResidualBlock): void {
    this.blocks.push(this.addModule(String(this.blocks.length), block));
  }
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    return tf.tidy(() => this.blocks.reduce((h, b) => b.forward(h, training), x));
  }
}

/** A convolution of the network, for inspection and weight porting. */
export interface ResNetConvSummary {
  /** Dotted name of the weight's module, e.g. `layer2.0.conv2`. */
  name: string;
  kernelSize: number;
  stride: number;
  padding: number;
  inChannels: number;
  outChannels: number;
}

/** Constructor parameters of {@link ResNet}. */
export interface ResNetParams {
  /** The architecture (`arch: 'resnet'`), e.g. from `presetConfig`; validated with `resolveExpertConfig`. */
  config: ResNetConfig | Extract<ExpertConfigInput, { arch: 'resnet' }>;
  classNames?: readonly string[];
  /** Seed of the weight initialisation, default 0. */
  seed?: number;
  /**
   * Draw random initial weights (default true). False leaves them at zero (BatchNorm at identity),
   * which is much faster when the weights are loaded right after (checkpoints).
   */
  initialize?: boolean;
}

/** A ResNet expert classifier (see the file comment for the layout). */
export class ResNet extends ExpertModel {
  declare readonly config: ResNetConfig;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly stages: Stage[] = [];
  private readonly fc: ClassifierHead;

  constructor(params: ResNetParams) {
    super({ config: params?.config, arch: 'resnet', classNames: params?.classNames });
    const config = this.config;
    const seed = params.seed ?? 0;
    assertInt('ResNet', 'seed', seed, 0, 0xffffffff);
    const initialize = params.initialize ?? true;
    assertBoolean('ResNet', 'initialize', initialize);
    const generator = initialize ? new Generator(seed) : ZERO_GENERATOR;
    const w = config.baseWidth;
    const Block = config.block === 'bottleneck' ? Bottleneck : BasicBlock;
    this.conv1 = this.addModule('conv1', convKaiming(generator, config.input.channels, w, 7, 2));
    this.bn1 = this.addModule('bn1', new BatchNorm2d({ numFeatures: w }));
    let inPlanes = w;
    config.layers.forEach((numBlocks, i) => {
      const planes = w * 2 ** i;
      const stage = this.addModule(`layer${i + 1}`, new Stage());
      for (let j = 0; j < numBlocks; j++) {
        stage.add(new Block(generator, inPlanes, planes, j === 0 && i > 0 ? 2 : 1, config.widthPerGroup ?? 64));
        inPlanes = planes * Block.expansion;
      }
      this.stages.push(stage);
    });
    this.fc = this.addModule('fc', new ClassifierHead({ head: config.head, inFeatures: inPlanes, numClasses: config.numClasses, generator }));
  }

  protected get head(): ClassifierHead {
    return this.fc;
  }

  /** Every convolution in registration order (stem, then per block conv1.., downsample), with its geometry. */
  convolutions(): ResNetConvSummary[] {
    return this.namedParameters().flatMap(([name, v]) => {
      const conv = CONV_OF_WEIGHT.get(v);
      if (!conv) return [];
      const { kernelSize, stride, padding, inChannels, outChannels } = conv;
      return [{ name: name.slice(0, -'.weight'.length), kernelSize, stride, padding, inChannels, outChannels }];
    });
  }

  protected pooledFeatures(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const stem = this.bn1.forward(this.conv1.forward(x), { training, relu: true }) as tf.Tensor4D;
      let h = maxPool2d({ x: stem, kernelSize: 3, stride: 2, padding: 1 });
      for (const s of this.stages) h = s.forward(h, training);
      return tf.mean(h, [1, 2]) as tf.Tensor2D;
    });
  }
}
