/** Builds an expert of any architecture from its config. */
import type { ExpertConfig, ExpertConfigInput } from './expert-config';
import { ResNet } from './resnet';
import { assertObject, show } from './validate';
import { VisionTransformer } from './vision-transformer';

/** Parameters of {@link createExpert}. */
export interface CreateExpertParams {
  /** Any architecture config (`arch: 'resnet'` or `'vit'`), e.g. `presetConfig({ name: 'resnet50-kather' })`. */
  config: ExpertConfig | ExpertConfigInput;
  /** One name per class (length `config.numClasses`); default `class_0`, `class_1`, ... */
  classNames?: readonly string[];
  /** Seed of the weight initialisation (integer in [0, 2^32-1]), default 0. */
  seed?: number;
  /** Draw random initial weights (default true); false leaves them at zero, for loading weights right after. */
  initialize?: boolean;
}

/** A new, randomly initialised expert: a {@link ResNet} or a {@link VisionTransformer}. */
export function createExpert(params: CreateExpertParams): ResNet | VisionTransformer {
  assertObject('createExpert', 'params', params);
  assertObject('createExpert', 'config', params.config);
  const { config, classNames, seed, initialize } = params;
  if (config.arch === 'resnet') return new ResNet({ config, classNames, seed, initialize });
  if (config.arch === 'vit') return new VisionTransformer({ config, classNames, seed, initialize });
  throw new RangeError(`createExpert: config.arch must be one of "resnet", "vit", got ${show((config as { arch?: unknown }).arch)}`);
}
