import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/expert-models exports', () => {
  it('exports what its README promises', () => {
    expect(api.PACKAGE_NAME).toBe('@fad/expert-models');
    expect(api.PACKAGE_STATUS).toBe('in-development');
  });
});
