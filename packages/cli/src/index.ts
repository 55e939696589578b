// Explicit barrel: the library side of @fad/cli (what the command line and the examples share).
// selectBackend moved to @fad/diffusion-core/backend (no sharp or vega needed); re-exported here.
export { BACKEND_NAMES, selectBackend } from '@fad/diffusion-core/backend';
export type { BackendAttempt, BackendName, SelectBackendParams, SelectedBackend } from '@fad/diffusion-core/backend';
