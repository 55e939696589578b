import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/diffusion-core exports', () => {
  it('exports what its README promises', () => {
    for (const name of [
      'DDPMScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler', 'schedulerFromConfig', 'schedulerFromName',
      'registerScheduler', 'schedulerNames', 'registerBetaSchedule', 'betaScheduleNames',
      'UNet2DConditional', 'UNET_PRESETS', 'resolveUNetConfig', 'DiffusionTrainer', 'Adam', 'EmaWeights',
      'learningRateAt', 'clipByGlobalNorm', 'sampleImages', 'serializeUNet',
      'deserializeUNet', 'encodeSafetensors', 'decodeSafetensors', 'Generator', 'Module', 'Linear', 'Conv2d',
      'GroupNorm', 'LayerNorm', 'Embedding', 'silu', 'addConditioningToken', 'composeDreamBoothBatch', 'DreamBoothTrainer',
      'conditioningTokenLabel', 'conditioningLabelCount', 'energyGuidance', 'guidedStep', 'invertDdim', 'sampleTwoStage', 'sampleClassGrid', 'tileClassGrid',
      'rescaleZeroTerminalSnr', 'rescaleGuidance', 'checkGuidanceRescale', 'minSnrWeight', 'predictedMeanByTimestep',
      'AutoencoderKL', 'AutoencoderTrainer', 'autoencoderLoss', 'ssimTensor', 'klDivergence', 'computeScalingFactor',
      'serializeAutoencoder', 'deserializeAutoencoder', 'AUTOENCODER_PRESETS', 'encodeToLatents', 'decodeLatents', 'reconstructImages',
      'findNonFiniteWeights', 'describeNonFiniteWeights',
      'checkLatentSampling', 'AUTOENCODER_PREFIX',
      'parseModelFile', 'readCheckedHeader', 'CodedError', 'withFsError', 'chooseMicroBatch', 'WASM_MICRO_BATCH_64', 'checkClassNames', 'checkConfigLimit', 'parseMetadataJson', 'ModelFileError', 'MODEL_FILE_LIMITS',
      'serializeDiffusersUNet', 'diffusersUNetFromFiles', 'diffusersWeightNames',
      'unetConfigFromDiffusers', 'diffusersConfigFromUNet', 'DiffusersConfigError', 'unetLayout',
      'flipImages', 'rotate90', 'resizeImages', 'resampleDownUp', 'resizeImageData', 'areaMatrix', 'RESIZE_METHODS',
      'adaptExpertInput', 'resolveInputAdaptation', 'INPUT_ADAPTATION_NAMES', 'RAW_INPUT_ADAPTATION',
      'skipSamplingDraws', 'parseShard', 'resolveShard', 'shardSlice', 'shardName', 'parseShardName', 'checkShardSet', 'ShardSetError', 'planSamplingShard',
    ]) {
      expect(typeof (api as Record<string, unknown>)[name], name).not.toBe('undefined');
    }
    expect(api.betaScheduleNames()).toEqual(expect.arrayContaining(['linear', 'scaled_linear', 'squaredcos_cap_v2']));
  });
});
