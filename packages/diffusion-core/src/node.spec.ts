import { describe, expect, it } from 'vitest';
import * as backend from './backend';
import * as api from './index';
import * as node from './node';

describe('@fad/diffusion-core subpath exports', () => {
  it('/node holds the file functions, which the browser-safe main entry point does not', () => {
    expect(Object.keys(node).sort()).toEqual([
      'COMPLETE_FILE', 'ResumableStepError', 'assertStateKey', 'loadAutoencoder', 'loadDiffusersUNet', 'loadUNet', 'numberTensors', 'numberedTensors', 'prefixTensors',
      'prepareResumableStep', 'readCompleteMarker', 'saveAutoencoder', 'saveDiffusersUNet', 'saveUNet', 'sha256', 'stableStringify', 'stepKey', 'tensorsWithPrefix', 'truncateMetricsLog',
      'writeCompleteMarker', 'writeFileAtomic', 'writeFileAtomicSync',
      'IMAGE_EXTENSIONS', 'ImageFolderError', 'decodeImageFile', 'inspectImageFolder', 'loadImageFolder', 'mapClassName', 'mapLimit', 'scanImageFolder',
      'selectImageFolderClasses', 'skippedLinksWarning',
      'DIFFUSION_CHECKPOINT_FORMAT', 'DIFFUSION_RUN_FILES', 'DataOrder', 'TrainingRunError', 'assertFiniteTraining', 'emptyMetricsWindow', 'encodeDiffusionCheckpoint',
      'loadCheckpointInto', 'logTrainingStep', 'makeBatch', 'parseTrainingCheckpoint', 'prepareDiffusionRun', 'readDiffusionCheckpoint', 'runTrainingLoop',
      'trainDiffusionRun', 'trainingScalars',
      'AUTOENCODER_CHECKPOINT_FORMAT', 'AUTOENCODER_RUN_FILES', 'encodeAutoencoderCheckpoint', 'prepareAutoencoderRun', 'readAutoencoderCheckpoint', 'trainAutoencoderRun',
      'DREAMBOOTH_CLASS_IMAGES_FORMAT', 'DREAMBOOTH_RUN_FILES', 'chooseInstances', 'dreamBoothClassImages', 'prepareDreamBoothRun', 'trainDreamBoothRun',
      'GENERATED_SET_FILES', 'GENERATED_SET_FORMAT', 'GENERATED_TIMING_FORMAT', 'GenerationRunError', 'assertNotReplacingInputs', 'assertReplaceableSet', 'classIntensityStats',
      'countNonFinite', 'generateImageSet', 'generatedSetDir', 'isPathInside', 'mergeGeneratedShards', 'pathInside', 'prepareGeneratedSet', 'readFinishedShard',
      'readGeneratedSetTiming', 'readGeneratedSetManifest', 'readGeneratedSetImages', 'listShardFolders', 'killedShardHints', 'removeStaleTemps', 'realpathOfExistingPrefix', 'writePngFile', 'encodePng', 'TEXTURE_CLASSES', 'textureImage', 'writeTextureDataset',
      'readJsonFileIfExists', 'formatDuration',
    ].sort());
    for (const name of Object.keys(node)) expect(name in api, name).toBe(false);
  });

  it('/backend holds selectBackend', () => {
    expect(Object.keys(backend).sort()).toEqual(['BACKEND_NAMES', 'selectBackend']);
    expect('selectBackend' in api).toBe(false);
  });
});
