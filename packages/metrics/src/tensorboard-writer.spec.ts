import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TensorBoardWriter, isTfEventsFileName } from './node';
import { readTfEvents } from '@fad/test-utils/tfevents-reader';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fad-tb-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// PNG-like bytes (neither the writer nor the readers decode them: they keep the encoded image).
const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

function writeSample(dir: string, resumeStep?: number): string {
  let t = 1_700_000_000;
  const w = new TensorBoardWriter({ logDir: dir, now: () => (t += 0.5), ...(resumeStep !== undefined ? { resumeStep } : {}) });
  w.addScalars({ step: 10, scalars: { 'train/loss': 0.75, 'train/lr': 1e-4, skipped: null } });
  w.addScalars({ step: 20, scalars: { 'train/loss': 0.5 } });
  w.addScalars({ step: 25, scalars: { nothing: undefined } }); // no values: no event
  w.addImage({ tag: 'validation/grid', step: 20, png: PNG, height: 1, width: 1, channels: 1 });
  w.close();
  w.close(); // no-op
  return w.path;
}

describe('TensorBoardWriter', () => {
  it('writes events.out.tfevents.<secs>.<host>.<pid>: file_version and a session start, then scalars and images', () => {
    const dir = tempDir();
    const path = writeSample(dir);
    expect(path.startsWith(join(dir, 'events.out.tfevents.1700000000.'))).toBe(true);
    expect(path.endsWith(`.${process.pid}`)).toBe(true);
    expect(isTfEventsFileName(readdirSync(dir)[0])).toBe(true);
    const events = readTfEvents(new Uint8Array(readFileSync(path)));
    expect(events.map((e) => e.step)).toEqual([0, 0, 10, 20, 20]);
    expect(events[0]).toEqual({ fileVersion: 'brain.Event:2', wallTime: 1_700_000_000.5, step: 0, values: [] });
    expect(events[1]).toEqual({ sessionLogStatus: 1, wallTime: 1_700_000_000.5, step: 0, values: [] });
    expect(events[2].values.map((v) => v.tag)).toEqual(['train/loss', 'train/lr']);
    expect(events[2].values[0].simpleValue).toBe(0.75);
    expect(events[2].values[1].simpleValue).toBeCloseTo(1e-4, 10);
    expect(events[3].values).toEqual([{ tag: 'train/loss', simpleValue: 0.5 }]);
    expect(events[4].values[0]).toEqual({ tag: 'validation/grid', image: { height: 1, width: 1, colorspace: 1, encoded: PNG } });
    expect(events.every((e, i) => i < 2 || e.wallTime > events[i - 1].wallTime)).toBe(true);
  });

  it('a resumed run gets a new file starting with a session start after its last kept step', () => {
    const dir = tempDir();
    const first = writeSample(dir);
    const second = writeSample(dir, 20);
    expect(second).not.toBe(first); // same second and pid: a numbered name
    expect(second).toBe(`${first}.1`);
    const events = readTfEvents(new Uint8Array(readFileSync(second)));
    expect(events[1]).toMatchObject({ step: 21, sessionLogStatus: 1 });
  });

  it('throws once closed, and validates its params', () => {
    const dir = tempDir();
    const w = new TensorBoardWriter({ logDir: dir });
    w.close();
    expect(() => w.addScalars({ step: 1, scalars: { a: 1 } })).toThrow(/is closed/);
    expect(() => new TensorBoardWriter({ logDir: '' })).toThrow(/logDir must be a non-empty string/);
    expect(() => new TensorBoardWriter({ logDir: dir, resumeStep: -1 })).toThrow(/resumeStep must be a non-negative integer, got -1/);
    const v = new TensorBoardWriter({ logDir: dir });
    expect(() => v.addScalars({ step: 1, scalars: { a: '1' as unknown as number } })).toThrow(/scalars\.a must be a number/);
    expect(() => v.addScalars({ step: -1, scalars: { a: 1 } })).toThrow(/event\.step must be a non-negative safe integer/);
    expect(() => v.addImage({ tag: 'g', step: 1, png: PNG, height: 1, width: 1, channels: 7 as 1 })).toThrow(/channels must be 1, 2, 3 or 4/);
    v.close();
  });
});

// TensorBoard's own Python reader, when a Python with the tensorboard package is at hand
// (FAD_PYTHON, default /usr/bin/python3; e.g. a venv with `pip install tensorboard`).
const PYTHON = process.env.FAD_PYTHON ?? '/usr/bin/python3';
const tensorboardAvailable = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import tensorboard.backend.event_processing.event_file_loader'], { stdio: 'ignore', timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
})();
if (!tensorboardAvailable) console.warn(`tensorboard-writer.spec: ${PYTHON} cannot import tensorboard; skipping the check with TensorBoard's Python reader (set FAD_PYTHON to a Python that has it)`);

const PY_READ = `
import json, sys
from tensorboard.backend.event_processing import event_file_loader, event_accumulator, plugin_event_accumulator
from tensorboard.util import tensor_util
out = {"raw": [], "scalars": {}, "images": {}, "server": {}}
for e in event_file_loader.EventFileLoader(sys.argv[1]).Load():
    out["raw"].append({"step": e.step, "what": e.WhichOneof("what"), "tags": [v.tag for v in e.summary.value]})
# The legacy accumulator, and the plugin accumulator that the tensorboard server loads runs with.
acc = event_accumulator.EventAccumulator(sys.argv[2], size_guidance={event_accumulator.IMAGES: 0, event_accumulator.SCALARS: 0})
acc.Reload()
for tag in acc.Tags()["scalars"]:
    out["scalars"][tag] = [[s.step, s.value] for s in acc.Scalars(tag)]
for tag in acc.Tags()["images"]:
    out["images"][tag] = [[i.step, i.width, i.height, len(i.encoded_image_string)] for i in acc.Images(tag)]
srv = plugin_event_accumulator.EventAccumulator(sys.argv[2], tensor_size_guidance={"scalars": 0, "images": 0})
srv.Reload()
for tag in srv.Tags()["tensors"]:
    plugin = srv.SummaryMetadata(tag).plugin_data.plugin_name
    out["server"][tag] = [plugin, [[t.step, tensor_util.make_ndarray(t.tensor_proto).tolist() if plugin == "scalars" else None] for t in srv.Tensors(tag)]]
print(json.dumps(out))
`;

describe.skipIf(!tensorboardAvailable)("TensorBoard's Python reader", () => {
  it('reads the file record by record (CRC-checked) and as a run, with the resumed tail dropped', () => {
    const dir = tempDir();
    const script = join(dir, 'read.py');
    writeFileSync(script, PY_READ);
    const runDir = join(dir, 'run');
    const first = writeSample(runDir);
    // A resume after step 10: the first process's points after step 10 are dropped by the session start.
    let t = 1_800_000_000;
    const w = new TensorBoardWriter({ logDir: runDir, resumeStep: 10, now: () => (t += 1) });
    w.addScalars({ step: 20, scalars: { 'train/loss': 0.25 } });
    w.close();
    const r = JSON.parse(execFileSync(PYTHON, [script, first, runDir], { encoding: 'utf8', timeout: 120_000 })) as {
      raw: Array<{ step: number; what: string; tags: string[] }>;
      scalars: Record<string, Array<[number, number]>>;
      images: Record<string, Array<[number, number, number, number]>>;
      server: Record<string, [string, Array<[number, number | null]>]>;
    };
    expect(r.raw).toEqual([
      { step: 0, what: 'file_version', tags: [] },
      { step: 0, what: 'session_log', tags: [] },
      { step: 10, what: 'summary', tags: ['train/loss', 'train/lr'] },
      { step: 20, what: 'summary', tags: ['train/loss'] },
      { step: 20, what: 'summary', tags: ['validation/grid'] },
    ]);
    expect(r.scalars['train/loss']).toEqual([[10, 0.75], [20, 0.25]]);
    expect(r.scalars['train/lr'][0][0]).toBe(10);
    expect(r.images['validation/grid']).toEqual([]); // the step-20 grid came after the resumed step
    expect(r.server['train/loss']).toEqual(['scalars', [[10, 0.75], [20, 0.25]]]);
    expect(r.server['train/lr'][1].map(([st]) => st)).toEqual([10]);
    expect(r.server['validation/grid']).toEqual(['images', []]);
  });
});
