/**
 * Rendering the report's figures. vega, vega-lite and sharp are optional peer dependencies of
 * `@fad/feature-align` (only the report needs them): each is imported on first use, and when one
 * cannot be loaded the ReportError `no-renderer` says `npm i vega vega-lite sharp`.
 *
 * A chart is a vega-lite spec compiled to Vega, rendered to SVG by Vega's headless renderer and
 * rasterised by sharp (librsvg). Text needs a system font (Debian: fonts-dejavu-core); without one,
 * labels render as boxes (see `systemFontAvailable`).
 */
import { assertKnownKeys, assertParamsObject, describe, fail } from '../validate';
import { ReportError } from './report-error';

type Sharp = typeof import('sharp');
type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

const loaded = new Map<string, Promise<unknown>>();

/** The optional dependency `name`, imported once; a ReportError `no-renderer` when it cannot be loaded. */
function load<T>(name: 'sharp' | 'vega' | 'vega-lite', importer: () => Promise<unknown>): Promise<T> {
  let p = loaded.get(name);
  if (!p) {
    p = importer().then(
      (m) => (name === 'sharp' ? ((m as { default?: unknown }).default ?? m) : m),
      (e: unknown) => {
        loaded.delete(name);
        const why = String((e as Error)?.message ?? e).split('\n')[0];
        throw new ReportError('no-renderer', `the report needs the optional dependencies vega, vega-lite and sharp; ${name} could not be loaded (${why}); install them with: npm i vega vega-lite sharp`, { module: name }, e);
      },
    );
    loaded.set(name, p);
  }
  return p as Promise<T>;
}

/** sharp (rasterising SVG, encoding PNG). */
export const loadSharp = (): Promise<Sharp> => load<Sharp>('sharp', () => import('sharp'));

/** vega-lite and vega, for the charts. */
export async function loadVega(): Promise<{ vl: VegaLite; vega: Vega }> {
  const [vl, vega] = await Promise.all([load<VegaLite>('vega-lite', () => import('vega-lite')), load<Vega>('vega', () => import('vega'))]);
  return { vl, vega };
}

/** Loads the three renderers up front, so a missing one fails before anything is written. */
export async function loadRenderers(): Promise<void> {
  await Promise.all([loadSharp(), loadVega()]);
}

/** Parameters of {@link renderVegaLite}. */
export interface RenderVegaLiteParams {
  /** A vega-lite spec (without `$schema`; a white background and the DejaVu Sans font are added unless the spec sets them). */
  spec: Record<string, unknown>;
  /** Pixels per SVG unit (default 2). */
  scale?: number;
}

/** Renders a vega-lite spec to PNG bytes (vega-lite → Vega → SVG → sharp). */
export async function renderVegaLite(params: RenderVegaLiteParams): Promise<Uint8Array> {
  const where = 'renderVegaLite';
  assertParamsObject(where, params);
  assertKnownKeys(where, params as unknown as Record<string, unknown>, ['spec', 'scale']);
  const { spec, scale = 2 } = params;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) fail(where, `spec must be a vega-lite spec object, got ${describe(spec)}`, TypeError);
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) fail(where, `scale must be a finite number > 0, got ${describe(scale)}`, RangeError);
  const { vl, vega } = await loadVega();
  const sharp = await loadSharp();
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { font: 'DejaVu Sans, sans-serif' }, ...spec };
  const compiled = vl.compile(full as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG(scale);
    return await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  } finally {
    view.finalize();
  }
}
