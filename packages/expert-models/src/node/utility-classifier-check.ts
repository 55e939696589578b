/**
 * The downstream classifier of the utility study must not have the architecture of an expert that
 * aligned or guided the generator: the test would then measure how well the generator learned to
 * please that expert (Node only: part of `@fad/expert-models/node`, as it reads checkpoint files).
 */
import { readFileSync } from 'node:fs';
import { readSafetensorsMetadata } from '@fad/diffusion-core';
import { stableStringify } from '@fad/diffusion-core/node';
import type { ExpertConfig } from '@fad/expert-models';
import { UtilityRunError } from './utility-run-error';

/** Parameters of {@link checkpointExpertConfig}. */
export interface CheckpointExpertConfigParams {
  /** An expert checkpoint (`saveExpert`'s safetensors file). */
  path: string;
}

/** The architecture config stored in an expert checkpoint (its metadata only), or null when the file is unreadable or has none. */
export function checkpointExpertConfig(p: CheckpointExpertConfigParams): ExpertConfig | null {
  if (p === null || typeof p !== 'object' || typeof p.path !== 'string' || p.path === '') throw new TypeError(`checkpointExpertConfig: expected { path: a non-empty string }, got ${JSON.stringify(p)}`);
  try {
    const meta = readSafetensorsMetadata(new Uint8Array(readFileSync(p.path)));
    return meta.config ? (JSON.parse(meta.config) as ExpertConfig) : null;
  } catch {
    return null;
  }
}

/** Parameters of {@link checkDiffersFromExpert}. */
export interface CheckDiffersFromExpertParams {
  /** The downstream classifier's architecture. */
  classifier: ExpertConfig;
  /** The expert's architecture and where it came from (nothing to check when null). */
  expert: { config: ExpertConfig; path: string } | null | undefined;
  /** What the expert is, in the message (e.g. `the generator's expert`). */
  what: string;
}

/** Throws a UtilityRunError `same-architecture` when the classifier has the expert's architecture (the same config, field for field). */
export function checkDiffersFromExpert(p: CheckDiffersFromExpertParams): void {
  if (p === null || typeof p !== 'object' || p.classifier === null || typeof p.classifier !== 'object' || typeof p.what !== 'string') {
    throw new TypeError('checkDiffersFromExpert: expected { classifier: ExpertConfig, expert: { config, path } | null, what: string }');
  }
  const { expert } = p;
  if (!expert) return;
  if (stableStringify(p.classifier) === stableStringify(expert.config)) {
    throw new UtilityRunError(
      'same-architecture',
      `the downstream classifier is the same architecture as ${p.what} ${expert.path}: the utility test would measure how well the generator learned to please that expert; choose another classifier`,
      { what: p.what, path: expert.path },
    );
  }
}
