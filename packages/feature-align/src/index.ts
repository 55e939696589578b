// Explicit barrel: every public name is listed here.
export { PACKAGE_NAME, PACKAGE_STATUS } from './package-info';
