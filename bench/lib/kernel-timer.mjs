// Per-kernel wall-clock timers: re-registers every kernel of a backend with a wrapper that
// accumulates time and call counts by kernel name. The cpu-family backends are synchronous,
// so wall time around kernelFunc is the kernel's time.
import * as tf from '@tensorflow/tfjs-core';

export function installKernelTimers(backendName) {
  const stats = new Map();
  const configs = tf.getKernelsForBackend(backendName);
  for (const cfg of configs) {
    const inner = cfg.kernelFunc;
    const name = cfg.kernelName;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({
      ...cfg,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const out = inner(args);
        const dt = performance.now() - t0;
        let s = stats.get(name);
        if (!s) stats.set(name, (s = { ms: 0, calls: 0, elems: 0 }));
        s.ms += dt;
        s.calls += 1;
        const o = Array.isArray(out) ? out[0] : out;
        if (o?.shape) s.elems += o.shape.reduce((a, b) => a * b, 1);
        return out;
      },
    });
  }
  return {
    reset: () => stats.clear(),
    table: (totalMs, divisor = 1) => {
      const rows = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const sum = rows.reduce((a, [, s]) => a + s.ms, 0);
      return { rows: rows.map(([k, s]) => ({ kernel: k, ms: s.ms / divisor, calls: s.calls / divisor, pct: (100 * s.ms) / totalMs, melems: s.elems / divisor / 1e6 })), kernelMs: sum / divisor };
    },
  };
}
