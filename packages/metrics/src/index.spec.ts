import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/metrics exports', () => {
  it('exports exactly the runtime API its README documents', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'MS_SSIM_WEIGHTS',
        'MetricInputError',
        'accuracy',
        'bootstrapIntervals',
        'classificationReport',
        'classificationReportFromConfusion',
        'compareIntensity',
        'confusionMatrix',
        'diversity',
        'featureStatistics',
        'frechetDistance',
        'frechetDistanceFromStatistics',
        'generationAccuracy',
        'intensityStatistics',
        'kernelInceptionDistance',
        'mmd2Unbiased',
        'msSsim',
        'msSsimMinSize',
        'pairedAccuracies',
        'percentileInterval',
        'ssim',
        'TFEVENTS_FILE_VERSION',
        'crc32c',
        'encodeEvent',
        'encodeEventRecord',
        'encodeTfRecord',
        'maskedCrc32c',
      ].sort(),
    );
    expect(api.MS_SSIM_WEIGHTS).toEqual([0.0448, 0.2856, 0.3001, 0.2363, 0.1333]);
    expect(new api.MetricInputError('x')).toBeInstanceOf(Error);
  });

  it('runs the README quick-start snippet', () => {
    const img = { data: Float64Array.from({ length: 2 * 16 * 16 }, (_, i) => ((i * 7919) % 97) / 96), shape: [2, 16, 16, 1] };
    const same = api.ssim({ x: img, y: img, dataRange: 1 });
    expect(same.values).toEqual([expect.closeTo(1, 12), expect.closeTo(1, 12)]);
    expect(api.diversity({ images: img, dataRange: 1 }).overall.numPairs).toBe(1);
    expect(api.accuracy({ yTrue: [0, 1, 2], yPred: [0, 2, 2] })).toBeCloseTo(2 / 3, 15);
    expect(api.generationAccuracy({ intended: [0, 1], predicted: [0, 0] }).overall).toBe(0.5);
    const f = [[0, 1], [1, 0], [2, 2]];
    expect(api.frechetDistance({ features1: f, features2: f }).distance).toBeCloseTo(0, 10);
    expect(api.mmd2Unbiased({ features1: [[0], [1]], features2: [[2], [-1]] })).toBeCloseTo(-14.5, 12);
    expect(api.msSsimMinSize({ windowSize: 11, scales: 5 })).toBe(161);
  });
});
