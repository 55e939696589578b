import { describe, expect, it } from 'vitest';
import * as api from './index';
import * as node from './node';

describe('@fad/expert-models/node exports', () => {
  it('holds the file functions; the browser-safe main entry point keeps only the byte-level ones', () => {
    expect(Object.keys(node).sort()).toEqual([
      'EXPERT_RUN_FILES', 'ExpertRunError', 'TrainingValidation', 'loadExpert', 'loadTorchvisionResNet', 'nodeTrainingFiles', 'prepareExpertRun', 'readExpertTrainingState',
      'readTorchvisionResNetLayout', 'saveExpert', 'saveTorchvisionResNet', 'trainExpert', 'trainExpertRun', 'validationScalars',
      // The utility study's file-based run.
      'UTILITY_FORMAT', 'UTILITY_RUN_FORMAT', 'UTILITY_SHARD_FORMAT', 'UtilityRunError', 'assembleUtilityJson', 'checkDiffersFromExpert', 'checkpointExpertConfig',
      'formatUtilityTable', 'mergeUtilityShards', 'readUtilityShard', 'runUtilityStudy', 'runUtilityStudyShard', 'utilityRunFileName',
    ].sort());
    for (const name of ['loadExpert', 'saveExpert', 'saveTorchvisionResNet', 'readExpertTrainingState', 'nodeTrainingFiles', 'runUtilityStudy', 'mergeUtilityShards']) expect(name in api, name).toBe(false);
    // Same names in both, the main entry point's without Node file access.
    expect(typeof api.trainExpert).toBe('function');
    expect(typeof api.loadTorchvisionResNet).toBe('function');
  });
});
