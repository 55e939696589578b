/** The pieces of the report's vega-lite charts that several charts share: colours and confusion matrices. */

/** A fixed colour per source (real images, each variant and DreamBooth arm of the experiment). */
export const COLORS = { real: '#7f7f7f', baseline: '#1f77b4', 'aligned-noisy': '#d62728', 'aligned-clean': '#2ca02c', dreambooth: '#ff7f0e', 'dreambooth-aligned': '#9467bd' } as Record<string, string>;

/** The colour encoding of the `variant` field, in the order of `variants`. */
export function colorEnc(variants: string[]) {
  return { field: 'variant', type: 'nominal', sort: variants, scale: { domain: variants, range: variants.map((v) => COLORS[v] ?? '#9467bd') }, title: 'variant' };
}

/** A confusion matrix as a heat map of row shares with the counts written in; rows without images are left out. */
export function confusionSpec(matrix: number[][], names: string[], title: string) {
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((v, p) => ({ true: names[t], predicted: names[p], count: v, share: total ? v / total : 0 }));
  }).filter((v) => matrix[names.indexOf(v.true)].reduce((a, b) => a + b, 0) > 0);
  return {
    title,
    data: { values },
    width: Math.max(160, names.length * 34),
    height: Math.max(120, new Set(values.map((v) => v.true)).size * 28),
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: names, title: 'predicted by the expert', axis: { labelAngle: -40 } },
      y: { field: 'true', type: 'nominal', sort: names, title: 'true / intended class' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'row share' } } },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: { text: { field: 'count', type: 'quantitative' }, color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' } },
      },
    ],
  };
}
