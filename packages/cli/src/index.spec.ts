import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/cli exports', () => {
  it('exports what its README promises', () => {
    expect(api.PACKAGE_NAME).toBe('@fad/cli');
    expect(api.PACKAGE_STATUS).toBe('in-development');
  });
});
