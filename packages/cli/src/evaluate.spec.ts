/**
 * What `fad` does with an evaluation (the evaluation itself is @fad/expert-models/node's
 * `evaluateGeneratedSet`, tested there; `fad evaluate` end to end is in cli.spec.ts and
 * evaluate-shards.spec.ts; the report's intensity table and figure of an eval.json are tested beside
 * the report, in @fad/feature-align/node): the CLI's `evaluate` config section is the library's
 * settings type.
 */
import type { EvaluationSettings } from '@fad/expert-models/node';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type EvaluateSection, parseConfig } from './config';

describe('fad evaluate settings', () => {
  it('the evaluate config section is the library\'s EvaluationSettings', () => {
    expectTypeOf<EvaluateSection>().toEqualTypeOf<EvaluationSettings>();
    expect(Object.keys(parseConfig({}).evaluate)).toEqual(['classes', 'excludeClasses', 'realSet', 'ssimMaxPairs', 'ssimWindow', 'ssimWinSize', 'kidSubsets', 'kidSubsetSize', 'batchSize']);
  });
});
