/**
 * Picks the TensorFlow.js backend of the page: WebGPU when the browser has it, else WebGL, else
 * wasm (XNNPACK; threads when the page is cross-origin isolated), else the pure-JS cpu backend.
 * WebGL that is rendered in software (SwiftShader, llvmpipe: no usable GPU) is skipped unless it
 * is asked for by name: there wasm is about 14 times faster (the README's measurements).
 * A backend counts as working only after a small op ran on it and gave the right numbers. The
 * page is an application, so it calls `tf.setBackend` (the libraries never do).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export const PAGE_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type PageBackend = (typeof PAGE_BACKENDS)[number];

export interface BackendChoice {
  name: PageBackend;
  /** Details of the chosen one (e.g. the WebGL renderer, wasm threads). */
  detail: string;
  /** Why each backend tried before it was not used. */
  skipped: Array<{ name: PageBackend; why: string }>;
}

/** The .wasm files are served beside the page (dist/wasm/), never from a CDN. */
setWasmPaths(new URL('wasm/', document.baseURI).href);

function webglRenderer(): string {
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return 'WebGL 2';
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return `WebGL 2, ${ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)}`;
  } catch {
    return 'WebGL 2';
  }
}

/** Renderers that draw WebGL on the CPU. */
const SOFTWARE_GL = /SwiftShader|llvmpipe|softpipe|Software/i;

async function tryBackend(name: PageBackend, allowSoftwareGl: boolean): Promise<string> {
  if (name === 'webgl' && !allowSoftwareGl) {
    const r = webglRenderer();
    if (SOFTWARE_GL.test(r)) throw new Error(`WebGL is rendered in software here (${r}); wasm is faster (?backend=webgl forces it)`);
  }
  if (name === 'webgpu') {
    const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (!gpu) throw new Error('this browser has no WebGPU (navigator.gpu)');
    if (!(await gpu.requestAdapter())) throw new Error('WebGPU has no adapter here (no usable GPU)');
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
  // A small matmul and a reduction, checked: a backend that initialises but computes garbage
  // (e.g. a broken driver) is not used.
  const y = tf.tidy(() => tf.sum(tf.matMul(tf.ones([4, 8]), tf.ones([8, 4]))));
  const v = (await y.data())[0];
  y.dispose();
  if (v !== 128) throw new Error(`a test op gave ${v} instead of 128`);
  if (name === 'webgl') return webglRenderer();
  if (name === 'wasm') return (self as { crossOriginIsolated?: boolean }).crossOriginIsolated ? `XNNPACK, ${navigator.hardwareConcurrency} threads` : 'XNNPACK, 1 thread (the page is not cross-origin isolated)';
  if (name === 'webgpu') return 'WebGPU';
  return 'pure JavaScript (slow)';
}

/**
 * Selects the first working backend of `order` (default: all, fastest first). Software WebGL
 * counts as working only when `order` is just `['webgl']` (asked for by name).
 */
export async function chooseBackend(order: readonly PageBackend[] = PAGE_BACKENDS): Promise<BackendChoice> {
  const allowSoftwareGl = order.length === 1;
  const skipped: BackendChoice['skipped'] = [];
  for (const name of order) {
    try {
      const detail = await tryBackend(name, allowSoftwareGl);
      return { name, detail, skipped };
    } catch (e) {
      skipped.push({ name, why: (e as Error).message || String(e) });
    }
  }
  throw new Error(`no TensorFlow.js backend works in this browser: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`);
}
