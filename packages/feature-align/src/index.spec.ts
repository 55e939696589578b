import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/feature-align exports', () => {
  it('exports exactly the documented runtime names', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'ALIGNMENT_CENTERINGS',
        'ALIGNMENT_TARGETS',
        'DEFAULT_COSINE_EPSILON',
        'DEFAULT_TAP',
        'FEATURE_ALIGN_FORMAT',
        'FEATURE_ALIGN_WEIGHT_LAYOUT',
        'FeatureAlignmentLoss',
        'INPUT_ADAPTATION_NAMES',
        'LATENT_EXPERT_INPUTS',
        'PROJECTION_KINDS',
        'PROJECTION_SIDES',
        'ProjectionHead',
        'RAW_INPUT_ADAPTATION',
        'adaptExpertInput',
        'adaptiveAvgPool2d',
        'combinedLoss',
        'deserializeFeatureAlignmentLoss',
        'extractExpertFeatures',
        'featureAlignmentObjective',
        'featureExtractorFromFunction',
        'featureExtractorFromLayersModel',
        'latentExpertImages',
        'poolFeatures',
        'resolveFeatureAlignmentLossConfig',
        'resolveInputAdaptation',
        'rowCosineSimilarity',
        'runWithoutGradient',
        'serializeFeatureAlignmentLoss',
        'stopGradient',
        'tapDiffusionModel',
        'tapLayersModel',
        'unetFeatureAlignment',
      ].sort(),
    );
  });

  it('has the documented defaults', () => {
    expect(api.DEFAULT_TAP).toBe('down_out');
    expect(api.ALIGNMENT_TARGETS).toEqual(['noisy', 'clean']);
    expect(api.LATENT_EXPERT_INPUTS).toEqual(['decoded', 'pixel-noised']);
    expect(api.PROJECTION_SIDES).toEqual(['expert', 'diffusion']);
    expect(api.ALIGNMENT_CENTERINGS).toEqual(['none', 'batch']);
    expect(api.PROJECTION_KINDS).toEqual(['linear', 'mlp']);
    expect(api.DEFAULT_COSINE_EPSILON).toBe(1e-8);
    expect(typeof api.FeatureAlignmentLoss).toBe('function');
  });

  it("exports every name the README's snippets import from @fad/feature-align", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const imports = [...readme.matchAll(/import \{([^}]+)\} from '@fad\/feature-align'/g)];
    expect(imports.length).toBeGreaterThanOrEqual(2);
    for (const m of imports) {
      for (const name of m[1].split(',').map((n) => n.trim()).filter(Boolean)) {
        expect(typeof (api as Record<string, unknown>)[name], name).not.toBe('undefined');
      }
    }
  });
});
