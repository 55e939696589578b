/**
 * An expert set up to guide the sampling of a class-conditional diffusion model: the guidance
 * function, the map from the model's class indices to the expert's (classifier guidance), whether
 * the expert was trained noise-aware (its checkpoint metadata says), and the record a generated
 * set's manifest keeps of it. `fad generate --guidance KIND` uses this.
 */
import type { GuidanceFn } from '@fad/diffusion-core';
import type { Expert } from './expert-model';
import { expertGuidance } from './expert-guidance';
import type { GuidanceKind } from './guidance-energies';
import { assertObject, show } from './validate';

/** What a generated set's manifest records of its guidance. */
export interface ExpertGuidanceRecord {
  kind: GuidanceKind;
  scale: number;
  /** The expert as the caller named it (its file). */
  expert: string;
  expertSha256: string;
  /** Whether the expert was trained noise-aware, per its checkpoint metadata (`training.noiseAware`). */
  expertNoiseAware: boolean;
  twoStage: boolean;
  minTimestep: number;
  /** classifier: the expert class index of each model class index. */
  labelMap: number[] | null;
}

/** Parameters of {@link generationGuidance}. */
export interface GenerationGuidanceParams {
  expert: Expert;
  /** The expert file's name, hash and metadata (from `parseExpertFile`). */
  expertFile: { name: string; sha256: string; metadata: Record<string, string> };
  /** The diffusion model's class names, in its label order. */
  modelClassNames: readonly string[];
  kind: GuidanceKind;
  scale: number;
  minTimestep: number;
  /** DDIM inversion first, then guided re-sampling (recorded; the sampler does it). */
  twoStage: boolean;
  /** The sampler's model space; default [-1, 1]. */
  dataRange?: readonly [number, number];
}

/** The guidance function, whether it is two-stage, its record, and a note for the log (or null). */
export interface GenerationGuidance {
  fn: GuidanceFn;
  twoStage: boolean;
  record: ExpertGuidanceRecord;
  /** Said when the expert was not trained noise-aware (its gradients on noisy x_t are less informative). */
  note: string | null;
}

/**
 * Sets up expert guidance for a model. Classifier guidance needs the expert to know each model
 * class by name, or (an expert with generic names `class_0`, ...) the same number of classes; a
 * RangeError names the classes it lacks.
 */
export function generationGuidance(p: GenerationGuidanceParams): GenerationGuidance {
  const fn = 'generationGuidance';
  assertObject(fn, 'params', p);
  assertObject(fn, 'expertFile', p.expertFile);
  const ex = p.expert;
  const classNames = p.modelClassNames;
  if (!Array.isArray(classNames) || classNames.length === 0) throw new TypeError(`${fn}: modelClassNames must be a non-empty list, got ${show(classNames)}`);
  let labelMap: number[] | null = null;
  if (p.kind === 'classifier') {
    const missing = classNames.filter((c) => !ex.classNames.includes(c));
    if (missing.length === 0) labelMap = classNames.map((c) => ex.classNames.indexOf(c));
    else if (ex.numClasses === classNames.length && classNames.every((c, i) => c === `class_${i}`)) labelMap = classNames.map((_, i) => i);
    else throw new RangeError(`the expert ${p.expertFile.name} has no class named ${missing.map((c) => `"${c}"`).join(', ')} (its classes: ${ex.classNames.join(', ')})`);
  }
  let noiseAware = false;
  try {
    noiseAware = Boolean(p.expertFile.metadata.training && JSON.parse(p.expertFile.metadata.training).noiseAware);
  } catch {
    noiseAware = false;
  }
  return {
    fn: expertGuidance({ expert: ex, kind: p.kind, scale: p.scale, dataRange: p.dataRange ?? [-1, 1], minTimestep: p.minTimestep, ...(labelMap ? { labelMap } : {}) }),
    twoStage: p.twoStage,
    record: { kind: p.kind, scale: p.scale, expert: p.expertFile.name, expertSha256: p.expertFile.sha256, expertNoiseAware: noiseAware, twoStage: p.twoStage, minTimestep: p.minTimestep, labelMap },
    note: noiseAware ? null : 'the guiding expert was not trained noise-aware; its gradients on noisy x_t are less informative',
  };
}
