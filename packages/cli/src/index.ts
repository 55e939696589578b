// Explicit barrel: the library side of @fad/cli (what the command line and the examples share).
export { BACKEND_NAMES, selectBackend } from './backend';
export type { BackendAttempt, BackendName, SelectBackendParams, SelectedBackend } from './backend';
