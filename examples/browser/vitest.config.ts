import { fadVitestConfig } from '../../vitest.shared.ts';

export default fadVitestConfig;
