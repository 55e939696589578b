import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/feature-align exports', () => {
  it('exports what its README promises', () => {
    expect(api.PACKAGE_NAME).toBe('@fad/feature-align');
    expect(api.PACKAGE_STATUS).toBe('in-development');
  });
});
