/** renderVegaLite: a chart to PNG; the optional renderers missing is a clear ReportError. */
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { renderVegaLite } from './report-renderer';

/** One red bar of height 1 on a 100x50 plot. */
const spec = { width: 100, height: 50, data: { values: [{ x: 'a', y: 1 }] }, mark: { type: 'bar', color: '#ff0000' }, encoding: { x: { field: 'x', type: 'nominal' }, y: { field: 'y', type: 'quantitative' } } };

describe('renderVegaLite', () => {
  it('renders a vega-lite spec to a PNG on white, `scale` pixels per unit', async () => {
    const png1 = await renderVegaLite({ spec, scale: 1 });
    const png2 = await renderVegaLite({ spec });
    const m1 = await sharp(png1).metadata();
    const m2 = await sharp(png2).metadata();
    expect(m1.format).toBe('png');
    // The plot (100x50) plus the axes' space, all doubled at the default scale 2.
    expect(m1.width).toBeGreaterThan(100);
    expect(m1.height).toBeGreaterThan(50);
    expect(Math.abs((m2.width as number) - 2 * (m1.width as number))).toBeLessThanOrEqual(1);
    expect(Math.abs((m2.height as number) - 2 * (m1.height as number))).toBeLessThanOrEqual(1);
    const { data, info } = await sharp(png1).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    expect(at(0, 0)).toEqual([255, 255, 255]);
    // The bar fills the plot's full height (y domain [0, 1]): its middle column is red halfway down.
    let red = 0;
    for (let i = 0; i < info.width * info.height; i++) if (data[3 * i] === 255 && data[3 * i + 1] === 0 && data[3 * i + 2] === 0) red++;
    expect(red).toBeGreaterThan(40 * 20);
  });

  it('checks its params', async () => {
    await expect(renderVegaLite({ spec: null as never })).rejects.toThrow(/renderVegaLite: spec must be a vega-lite spec object, got null/);
    await expect(renderVegaLite({ spec, scale: 0 })).rejects.toThrow(RangeError);
    await expect(renderVegaLite({ spec, dpi: 2 } as never)).rejects.toThrow(/unknown parameter "dpi"/);
  });

  it('names `npm i vega vega-lite sharp` when one of them cannot be loaded', async () => {
    vi.resetModules();
    vi.doMock('vega', () => {
      throw new Error("Cannot find package 'vega'");
    });
    try {
      const fresh = await import('./report-renderer');
      const e = await fresh.renderVegaLite({ spec }).catch((x: unknown) => x);
      expect((e as Error).name).toBe('ReportError');
      expect(e).toMatchObject({ code: 'no-renderer', details: { module: 'vega' } });
      expect((e as Error).message).toMatch(/^the report needs the optional dependencies vega, vega-lite and sharp; vega could not be loaded \(.+\); install them with: npm i vega vega-lite sharp$/);
      // The import's error (here vitest's wrapping of the mock's) is the cause.
      expect((e as Error).cause).toBeInstanceOf(Error);
    } finally {
      vi.doUnmock('vega');
      vi.resetModules();
    }
  });
});
