// Explicit barrel of `@fad/diffusion-core/backend`: picking a TensorFlow.js backend, for
// applications (libraries never choose one). Separate from the main entry point because it
// imports optional backend packages on demand.
export { BACKEND_NAMES, selectBackend } from './backend/select-backend';
export type { BackendAttempt, BackendName, SelectBackendParams, SelectedBackend } from './backend/select-backend';
