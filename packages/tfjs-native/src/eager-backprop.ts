// Backpropagation that frees memory as it goes, for the `native` backend.
//
// tfjs-core 4.x's Engine.gradients keeps (a) every tensor saved for the backward pass and
// (b) the gradient of every intermediate tensor alive until the whole backward pass ends: its
// backpropagateGradients never disposes a node's output gradients after using them, and the
// saved tensors are disposed only after the last node. For a diffusion U-Net at batch 16 that
// doubles the peak memory of a train step (measured: 1.35 GB live at the end of the forward,
// 2.8 GB at the peak of the backward). PyTorch frees both as soon as a node is done.
//
// This module replaces Engine.gradients (on the engine instance) with the same algorithm plus
// eager freeing, active only while the `native` backend is selected and for first-order
// gradients (nested tf.grad calls take the original path):
//   - after a node's input gradients are computed, the gradients of its outputs are disposed
//     (a tensor's gradient is complete once its producer is reached: all its consumers come
//     later on the tape and were processed before);
//   - the node's saved tensors (clones tfjs made for it) are disposed right after its
//     gradient ran, instead of after the last node;
//   - each node's gradient function runs in its own tidy, so intermediates it creates
//     eagerly are freed with it.
// Only tensors created during the backward pass are ever disposed early (never the forward's
// tensors, the caller's dy or the requested gradients), and a tensor still referenced by the
// gradient map is never disposed, so gradient functions that return a dy or a saved tensor as
// is stay correct. Disable with FAD_TFJS_NATIVE_EAGER_BACKPROP=0.
//
// During that forward pass the tensors kernels save for their gradients are also saved more
// cheaply: tfjs-core clones each one through a full Identity kernel call plus a tape node
// (~1,500 per ResNet50 train step, ~10% of its time on `native`), which only a second-order
// gradient could use. Here a saved tensor is a new Tensor on the same data (what the cpu
// Identity kernel returns), without the kernel dispatch and the tape node.
import { add, engine, ones, Tensor, util } from '@tensorflow/tfjs-core';

import { NATIVE_BACKEND_NAME } from './backend-name';

interface TapeNode {
  id: number;
  kernelName: string;
  outputs: Tensor[];
  inputs: Record<string, Tensor>;
  gradient?: (dys: Array<Tensor | null>) => Record<string, () => Tensor>;
  saved?: Tensor[];
}

interface EngineInternals {
  backendName: string;
  backend: { incRef(dataId: object): void };
  saveTensorsForBackwardMode(tensors: Tensor[]): Tensor[];
  keep<T extends Tensor>(t: T): T;
  makeTensorFromTensorInfo(info: { dataId: object; shape: number[]; dtype: string }, backend?: unknown): Tensor;
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T>(nameOrFn: string | (() => T), fn?: () => T): T;
  nextTensorId(): number;
  gradients: GradientsFn;
}

type GradientsFn = (
  f: () => Tensor,
  xs: Tensor[],
  dy?: Tensor,
  allowNoGradients?: boolean,
) => { value: Tensor; grads: Tensor[] };

/** tfjs-core's getFilteredNodesXToY (tape.ts), which the public API does not export. */
function filteredNodes(tape: TapeNode[], xs: Tensor[], y: Tensor): TapeNode[] {
  const tensorsFromX: Record<number, boolean> = {};
  const nodesFromX: Record<number, boolean> = {};
  for (const x of xs) tensorsFromX[x.id] = true;
  for (const node of tape) {
    for (const inputName in node.inputs) {
      if (tensorsFromX[node.inputs[inputName].id]) {
        node.outputs.forEach((o) => (tensorsFromX[o.id] = true));
        nodesFromX[node.id] = true;
        break;
      }
    }
  }
  const tensorsLeadToY: Record<number, boolean> = { [y.id]: true };
  const nodesToY: Record<number, boolean> = {};
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => tensorsLeadToY[o.id])) {
      for (const inputName in node.inputs) {
        tensorsLeadToY[node.inputs[inputName].id] = true;
        nodesToY[node.id] = true;
      }
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (nodesFromX[node.id] && nodesToY[node.id]) {
      const inputs: Record<string, Tensor> = {};
      for (const inputName in node.inputs) {
        if (tensorsFromX[node.inputs[inputName].id]) inputs[inputName] = node.inputs[inputName];
      }
      out.push({ ...node, inputs, outputs: node.outputs });
    }
  }
  return out;
}

let original: GradientsFn | null = null;
let originalSave: ((tensors: Tensor[]) => Tensor[]) | null = null;
/** True while the eager gradients run their (first-order) forward pass. */
let lightSaving = false;

function enabled(): boolean {
  return process.env.FAD_TFJS_NATIVE_EAGER_BACKPROP !== '0';
}

/** Installs the eager-freeing Engine.gradients (idempotent). */
export function installEagerBackprop(): void {
  const eng = engine() as unknown as EngineInternals;
  if (original) return;
  original = eng.gradients;
  const orig = original;
  originalSave = eng.saveTensorsForBackwardMode;
  const origSave = originalSave;
  eng.saveTensorsForBackwardMode = function saveTensorsForBackwardMode(this: EngineInternals, tensors: Tensor[]): Tensor[] {
    // Only for the tape of a first-order gradient of ours (a nested gradient's forward runs at
    // depth 2 and may need the clones' tape nodes), and dtypes whose data is one entry.
    if (!lightSaving || this.state.gradientDepth !== 1 || this.backendName !== NATIVE_BACKEND_NAME) return origSave.call(this, tensors);
    return tensors.map((t) => {
      if (t.dtype === 'complex64' || t.dtype === 'string') return this.keep(origSave.call(this, [t])[0]);
      const backend = this.backend;
      backend.incRef(t.dataId);
      return this.keep(this.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }, backend));
    });
  };
  eng.gradients = function gradients(this: EngineInternals, f, xs, dy, allowNoGradients = false) {
    if (!enabled() || this.backendName !== NATIVE_BACKEND_NAME || this.state.gradientDepth !== 0) {
      return orig.call(this, f, xs, dy, allowNoGradients);
    }
    util.assert(xs.length > 0, () => 'gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = this.scopedRun(
      () => {
        this.startTape();
        lightSaving = true;
      },
      () => {
        lightSaving = false;
        this.endTape();
      },
      () => this.tidy('forward', f),
    );
    util.assert(y instanceof Tensor, () => 'The result y returned by f() must be a tensor.');
    const tape = this.state.activeTape as TapeNode[];
    const filteredTape = filteredNodes(tape, xs, y);
    if (!allowNoGradients && filteredTape.length === 0 && xs.length > 0) {
      throw new Error(
        'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
      );
    }
    return this.tidy('backward', () => {
      const firstBackwardId = this.nextTensorId();
      const keepIds = new Set(xs.map((x) => x.id));
      const map: Record<number, Tensor> = {};
      const refs = new Map<Tensor, number>();
      const put = (id: number, t: Tensor) => {
        map[id] = t;
        refs.set(t, (refs.get(t) ?? 0) + 1);
      };
      const take = (id: number): Tensor => {
        const t = map[id];
        delete map[id];
        refs.set(t, (refs.get(t) ?? 1) - 1);
        return t;
      };
      /** Disposes t if it was made by this backward pass and nothing references it any more. */
      const release = (t: Tensor) => {
        if (t !== dy && t.id >= firstBackwardId && !(refs.get(t) ?? 0) && !t.isDisposed) t.dispose();
      };
      put(y.id, dy == null ? ones(y.shape) : dy);
      for (let i = filteredTape.length - 1; i >= 0; i--) {
        const node = filteredTape[i];
        const dys = node.outputs.map((o) => map[o.id] ?? null);
        if (node.gradient == null) {
          throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
        }
        const gradient = node.gradient;
        const dxs = this.tidy(() => {
          const inputGradients = gradient(dys);
          const res: Record<string, Tensor> = {};
          for (const inputName in node.inputs) {
            if (!(inputName in inputGradients)) {
              throw new Error(
                `Cannot backprop through input ${inputName}. Available gradients found: ${Object.keys(inputGradients)}.`,
              );
            }
            res[inputName] = inputGradients[inputName]();
          }
          return res;
        });
        for (const inputName in node.inputs) {
          const dx = dxs[inputName];
          if (dx.dtype !== 'float32') {
            throw new Error(
              `Error in gradient for op ${node.kernelName}. The gradient of input ${inputName} must have 'float32' dtype, but has '${dx.dtype}'`,
            );
          }
          const x = node.inputs[inputName];
          if (!util.arraysEqual(dx.shape, x.shape)) {
            throw new Error(
              `Error in gradient for op ${node.kernelName}. The gradient of input '${inputName}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
            );
          }
          if (map[x.id] == null) {
            put(x.id, dx);
          } else {
            const cur = take(x.id);
            put(x.id, add(cur, dx));
            release(cur);
            release(dx);
          }
        }
        // The gradients of this node's outputs are complete and now used up.
        for (const o of node.outputs) {
          if (map[o.id] != null && !keepIds.has(o.id)) release(take(o.id));
        }
        for (const t of node.saved ?? []) {
          if (!(refs.get(t) ?? 0) && !t.isDisposed) t.dispose();
        }
      }
      const grads = xs.map((x) => map[x.id]);
      // First-order gradients (checked above): the tape can go, as in tfjs-core.
      tape.forEach((node) => {
        for (const t of node.saved ?? []) t.dispose();
      });
      this.state.activeTape = null;
      return { value: y, grads };
    });
  } as GradientsFn;
}

/** Restores tfjs-core's own Engine.gradients (for tests). */
export function uninstallEagerBackprop(): void {
  if (!original) return;
  const eng = engine() as unknown as EngineInternals;
  eng.gradients = original;
  if (originalSave) eng.saveTensorsForBackwardMode = originalSave;
  original = null;
  originalSave = null;
}
