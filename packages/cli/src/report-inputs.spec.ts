/**
 * The report (@fad/feature-align/node) reads the run folder's files through its own structural
 * types; the files fad writes (with @fad/expert-models/node's evaluation and utility runs) must have
 * those fields. Checked by the type checker (`tsc` covers the specs), so a field renamed on either
 * side fails the build.
 */
import type { EvaluationResult, UtilityJson } from '@fad/expert-models/node';
import type { ReportEvaluation, ReportUtilityResults } from '@fad/feature-align/node';
import { describe, expectTypeOf, it } from 'vitest';

describe('the report reads what fad writes', () => {
  it('eval.json and utility.json have the fields the report reads', () => {
    expectTypeOf<EvaluationResult>().toExtend<ReportEvaluation>();
    expectTypeOf<UtilityJson>().toExtend<ReportUtilityResults>();
  });
});
