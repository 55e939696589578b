/** Name under which {@link registerNativeBackend} registers the backend. */
export const NATIVE_BACKEND_NAME = 'native';
