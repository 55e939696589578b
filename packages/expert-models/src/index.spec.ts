import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import * as api from './index';
import { useCpuBackend } from './testing/setup-cpu';

beforeAll(useCpuBackend);

describe('@fad/expert-models exports', () => {
  it('exports exactly the documented runtime names', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'BatchNorm2d', 'CHECKPOINT_STATUS_KEY', 'ClassifierHead', 'DEFAULT_AUGMENT_CONFIG', 'EXPERT_ARCHS', 'EXPERT_FORMAT', 'EXPERT_PRESETS', 'ExpertModel', 'ExpertTrainer',
        'HEAD_TYPES', 'KATHER_CLASS_NAMES', 'NO_AUGMENTATION', 'RESIZE_METHODS', 'ResNet', 'VisionTransformer', 'WEIGHT_DECAY_MODES',
        'adjustBrightness', 'adjustContrast', 'applyAugmentParams', 'areaMatrix', 'augmentBatch', 'createExpert', 'deserializeExpert',
        'autoencoderFidelity', 'formatAutoencoderFidelity', 'evaluateExpert', 'featureDimOf', 'flipImages', 'gaussianBlur', 'gaussianKernel1d', 'gelu', 'isBufferVariable',
        'maxPool2d', 'presetConfig', 'resampleDownUp', 'resizeImages', 'resolveAugmentConfig', 'resolveExpertConfig', 'rotate90',
        'sampleAugmentParams', 'serializeExpert', 'softmaxCrossEntropy', 'stepDecayLearningRate', 'stratifiedSplit',
        'TRAIN_STATE_FORMAT', 'expertTrainingStateInfo',
        'trainExpert', 'unsharpMask', 'GUIDANCE_KINDS', 'UNCERTAINTY_KINDS', 'classLogLikelihood', 'uncertaintyEnergy', 'toExpertInput', 'expertOutputs', 'argMax', 'generationGuidance', 'parseExpertFile', 'expertGuidance', 'noisyExpertBatch',
        'mixSynthetic', 'planProtocols', 'stratifiedFraction', 'protocolTrainingSet', 'runUtility', 'summarizeUtility',
        'TORCHVISION_RESNET_ARCHS', 'describeTorchvisionResNet', 'exportTorchvisionResNet', 'loadTorchvisionResNet',
        'torchvisionStateDict', 'decodeTorchStateDict', 'formatConfusionMatrix', 'formatIntensityTable',
      ].sort(),
    );
  });

  it('runs the README snippet at a tiny size', async () => {
    const config = api.presetConfig({ name: 'resnet18-kather', overrides: { baseWidth: 4, layers: [1, 1], input: { size: 16 } } });
    const expert = api.createExpert({ config, classNames: [...api.KATHER_CLASS_NAMES], seed: 0 });
    const images = tf.randomUniform([16, 16, 16, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = Array.from({ length: 16 }, (_, i) => i % 8);
    const result = await api.trainExpert({ expert, images, labels, epochs: 1, batchSize: 8, validationFraction: 0.5 });
    expect(result.split.validation).toHaveLength(8);
    const report = api.evaluateExpert({ expert, images, labels });
    expect(report.confusionMatrix).toHaveLength(8);
    expert.freeze();
    const f = expert.features(images);
    expect(f.shape).toEqual([16, expert.featureDim]);
    const { expert: copy } = api.deserializeExpert({ bytes: api.serializeExpert({ expert }) });
    expect(copy.classNames[0]).toBe('tumor');
    tf.dispose([images, f]);
    copy.dispose();
    expert.dispose();
  });
});
