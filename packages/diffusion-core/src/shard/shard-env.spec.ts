import { describe, expect, it } from 'vitest';
import { resolveShard } from './shard-env';

const r = (env: Record<string, string>, flag?: string, countFlag?: number) => resolveShard({ env, flag, countFlag });

describe('resolveShard', () => {
  it('is null without flag or batch-system variables', () => {
    expect(r({})).toBeNull();
    expect(r({ JOB_COMPLETION_INDEX: '' })).toBeNull();
  });

  it('takes --shard I/N, which wins over the environment; --shard none opts out', () => {
    const env = { JOB_COMPLETION_INDEX: '5', FAD_SHARD_COUNT: '8', SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' };
    expect(r(env, '1/2')).toEqual({ index: 1, count: 2, source: '--shard 1/2' });
    expect(r(env, 'none')).toBeNull();
    expect(() => r({}, '2/2')).toThrow(/--shard "2\/2": shard index 2 is out of range/);
    expect(() => r({}, '1/2', 4)).toThrow(/give either --shard I\/N or --shard-count N/);
  });

  it('takes FAD_SHARD=I/N before the batch systems', () => {
    expect(r({ FAD_SHARD: '2/3', JOB_COMPLETION_INDEX: '0', FAD_SHARD_COUNT: '8' })).toMatchObject({ index: 2, count: 3, source: 'FAD_SHARD=2/3' });
    expect(r({ FAD_SHARD: 'none', JOB_COMPLETION_INDEX: '0', FAD_SHARD_COUNT: '8' })).toBeNull();
    expect(() => r({ FAD_SHARD: '3/3' })).toThrow(/FAD_SHARD "3\/3"/);
  });

  describe('Kubernetes Indexed Job', () => {
    it('reads the 0-based JOB_COMPLETION_INDEX and the count from FAD_SHARD_COUNT or --shard-count (the flag wins)', () => {
      expect(r({ JOB_COMPLETION_INDEX: '0', FAD_SHARD_COUNT: '4' })).toEqual({ index: 0, count: 4, source: 'JOB_COMPLETION_INDEX=0, FAD_SHARD_COUNT=4' });
      expect(r({ JOB_COMPLETION_INDEX: '3', FAD_SHARD_COUNT: '4' })).toMatchObject({ index: 3, count: 4 });
      expect(r({ JOB_COMPLETION_INDEX: '3', FAD_SHARD_COUNT: '2' }, undefined, 5)).toMatchObject({ index: 3, count: 5, source: 'JOB_COMPLETION_INDEX=3, --shard-count 5' });
    });
    it('names the variable that is missing, malformed or out of range', () => {
      expect(() => r({ JOB_COMPLETION_INDEX: '1' })).toThrow(/JOB_COMPLETION_INDEX=1 is set \(a Kubernetes Indexed Job\) but not the number of shards: set FAD_SHARD_COUNT to the Job's spec.completions/);
      expect(() => r({ JOB_COMPLETION_INDEX: 'x', FAD_SHARD_COUNT: '4' })).toThrow(/JOB_COMPLETION_INDEX must be an integer >= 0, got "x"/);
      expect(() => r({ JOB_COMPLETION_INDEX: '-1', FAD_SHARD_COUNT: '4' })).toThrow(/JOB_COMPLETION_INDEX must be an integer >= 0/);
      expect(() => r({ JOB_COMPLETION_INDEX: '1', FAD_SHARD_COUNT: '0' })).toThrow(/FAD_SHARD_COUNT must be an integer >= 1, got "0"/);
      expect(() => r({ JOB_COMPLETION_INDEX: '1', FAD_SHARD_COUNT: '2.5' })).toThrow(/FAD_SHARD_COUNT must be an integer/);
      expect(() => r({ JOB_COMPLETION_INDEX: '4', FAD_SHARD_COUNT: '4' })).toThrow(/JOB_COMPLETION_INDEX=4 gives shard index 4, which is not below the number of shards 4 \(FAD_SHARD_COUNT=4\)/);
    });
  });

  describe('SLURM job array', () => {
    it('maps --array=0-3, 1-4 and 0-6:2 to indexes 0..3 with SLURM_ARRAY_TASK_COUNT', () => {
      const arr = (ids: number[], min: number, step?: number) => ids.map((id) => r({
        SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: String(min), SLURM_ARRAY_TASK_COUNT: String(ids.length), ...(step ? { SLURM_ARRAY_TASK_STEP: String(step) } : {}),
      })!.index);
      expect(arr([0, 1, 2, 3], 0)).toEqual([0, 1, 2, 3]);
      expect(arr([1, 2, 3, 4], 1)).toEqual([0, 1, 2, 3]);
      expect(arr([0, 2, 4, 6], 0, 2)).toEqual([0, 1, 2, 3]);
      expect(r({ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '8' })).toEqual({
        index: 4, count: 8, source: 'SLURM_ARRAY_TASK_ID=5 (SLURM_ARRAY_TASK_MIN=1), SLURM_ARRAY_TASK_COUNT=8',
      });
    });
    it('lets FAD_SHARD_COUNT or --shard-count give the count', () => {
      expect(r({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '2', FAD_SHARD_COUNT: '6' })).toMatchObject({ index: 2, count: 6 });
      expect(r({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0' }, undefined, 3)).toMatchObject({ index: 2, count: 3 });
    });
    it('names the variable that is malformed or out of range', () => {
      expect(() => r({ SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4' })).toThrow(/SLURM_ARRAY_TASK_ID=4 \(SLURM_ARRAY_TASK_MIN=0\) gives shard index 4, which is not below the number of shards 4 \(SLURM_ARRAY_TASK_COUNT=4\)/);
      expect(() => r({ SLURM_ARRAY_TASK_ID: 'abc', SLURM_ARRAY_TASK_COUNT: '4' })).toThrow(/SLURM_ARRAY_TASK_ID must be an integer >= 0, got "abc"/);
      expect(() => r({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_COUNT: '4' })).toThrow(/SLURM_ARRAY_TASK_ID=1 is below SLURM_ARRAY_TASK_MIN=2/);
      expect(() => r({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_STEP: '2', SLURM_ARRAY_TASK_COUNT: '4' })).toThrow(/not SLURM_ARRAY_TASK_MIN=0 plus a multiple of SLURM_ARRAY_TASK_STEP=2/);
      expect(() => r({ SLURM_ARRAY_TASK_ID: '1' })).toThrow(/SLURM_ARRAY_TASK_ID=1 is set but not SLURM_ARRAY_TASK_COUNT/);
      expect(() => r({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: 'many' })).toThrow(/SLURM_ARRAY_TASK_COUNT must be an integer >= 1, got "many"/);
    });
  });

  it('refuses --shard-count without an index', () => {
    expect(() => r({}, undefined, 4)).toThrow(/--shard-count needs a shard index: --shard I\/N, or JOB_COMPLETION_INDEX \(Kubernetes\) or SLURM_ARRAY_TASK_ID/);
    expect(() => r({ JOB_COMPLETION_INDEX: '0' }, undefined, 0)).toThrow(/--shard-count must be an integer >= 1/);
  });
});
