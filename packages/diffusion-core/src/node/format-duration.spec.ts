import { describe, expect, it } from 'vitest';
import { formatDuration } from './format-duration';

describe('formatDuration', () => {
  it('writes whole seconds, minutes with two-digit seconds, hours with two-digit minutes', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(12.4)).toBe('12s');
    expect(formatDuration(59.6)).toBe('1m00s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3599)).toBe('59m59s');
    expect(formatDuration(3600 + 2 * 60 + 29)).toBe('1h02m');
    expect(formatDuration(26 * 3600)).toBe('26h00m');
  });

  it('gives ? for what is not a duration', () => {
    for (const v of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(formatDuration(v)).toBe('?');
  });
});
