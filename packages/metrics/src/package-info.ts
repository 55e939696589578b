/** The npm name of this package. */
export const PACKAGE_NAME = '@fad/metrics';
/** Where the package stands: its API is being built (see README). */
export const PACKAGE_STATUS = 'in-development' as const;
