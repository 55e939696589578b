/** A training run's metrics, comparable across runs: what the kill-and-resume specs compare with an uninterrupted run. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MetricsWithoutTimeParams {
  /** The run's folder (holding metrics.jsonl). */
  dir: string;
}

/** The lines of `dir/metrics.jsonl`, parsed, without their wall-clock `time`. */
export function metricsWithoutTime({ dir }: MetricsWithoutTimeParams): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { time: _t, ...rest } = JSON.parse(l);
    return rest;
  });
}
