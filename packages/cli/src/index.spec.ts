import { describe, expect, it } from 'vitest';
import * as api from './index';

describe('@fad/cli library exports', () => {
  it('exports the backend helper the README documents', () => {
    expect(typeof api.selectBackend).toBe('function');
    expect(api.BACKEND_NAMES).toEqual(['tensorflow', 'native', 'wasm', 'cpu']);
  });
});
