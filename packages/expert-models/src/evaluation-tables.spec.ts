import { describe, expect, it } from 'vitest';
import { formatConfusionMatrix, formatIntensityTable, type IntensityRow } from './evaluation-tables';

describe('formatConfusionMatrix', () => {
  it('aligns the counts under class names cut to 12 characters, columns as wide as the widest name or count plus one', () => {
    const text = formatConfusionMatrix({ matrix: [[12, 0], [3, 1234567]], classNames: ['tumor', 'a-very-long-class-name'] });
    // Width max(6, 12, 7) + 1 = 13 per column.
    expect(text.split('\n')).toEqual([
      `${' '.repeat(13)}${' '.repeat(8)}tumor a-very-long-   (rows: true, columns: predicted)`,
      `tumor${' '.repeat(8)}${' '.repeat(11)}12${' '.repeat(12)}0`,
      `a-very-long-${' '.repeat(1)}${' '.repeat(12)}3${' '.repeat(6)}1234567`,
    ]);
  });

  it('checks its params', () => {
    expect(() => formatConfusionMatrix({ matrix: [[1]], classNames: ['a', 'b'] })).toThrow(/^formatConfusionMatrix: matrix must be 2x2 numbers/);
    expect(() => formatConfusionMatrix({ matrix: [], classNames: 'a' as never })).toThrow(/classNames must be an array of strings/);
  });
});

describe('formatIntensityTable', () => {
  const row = (v: Partial<IntensityRow>): IntensityRow => ({
    numGenerated: 2, numReal: 3, generatedMean: 0.5, realMean: 0.25, meanDifference: 0.25, generatedMeanSd: 0.1, realMeanSd: 0.1, meanGap: 2.5,
    generatedContrast: 0.125, realContrast: 0.0625, contrastDifference: 0.0625, ...v,
  });

  it('prints one line per class and the pool, signed differences and gaps, a dash for null', () => {
    const text = formatIntensityTable({
      intensity: { perClass: [{ class: 'a-long-class-name', ...row({}) }, { class: 'empty', ...row({ meanDifference: -0.1, meanGap: null, realMean: null }) }], overall: row({ generatedMean: 1 }), definition: 'd' },
    });
    expect(text.split('\n')).toEqual([
      'intensity (mean pixel value; contrast = sd within an image)',
      '  class        gen mean real mean    diff  gap/sd gen contr real contr',
      '  a-long-clas     0.500     0.250  +0.250    +2.5     0.125      0.063',
      '  empty           0.500         –  -0.100       –     0.125      0.063',
      '  all             1.000     0.250  +0.250    +2.5     0.125      0.063',
    ]);
  });

  it('checks its params', () => {
    expect(() => formatIntensityTable({ intensity: null as never })).toThrow(/^formatIntensityTable: intensity must be an evaluation's intensity section/);
  });
});
