/** Stable codes of every error the store throws (see README, "Errors"). */
export const STORE_ERROR_CODES = [
  'ERR_OBJECT_EXISTS',
  'ERR_OBJECT_NOT_FOUND',
  'ERR_OBJECT_NOT_SEALED',
  'ERR_OBJECT_ALREADY_SEALED',
  'ERR_OBJECT_IN_USE',
  'ERR_NOT_CREATOR',
  'ERR_STORE_FULL',
  'ERR_STORE_EXISTS',
  'ERR_STORE_NOT_FOUND',
  'ERR_STORE_CLOSED',
  'ERR_BAD_SEGMENT',
  'ERR_INVALID_ARGUMENT',
  'ERR_TIMEOUT',
  'ERR_ABORTED',
  'ERR_NO_SPACE',
  'ERR_TOO_MANY_CLIENTS',
  'ERR_SYSTEM',
] as const;

export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

/** The one error class of shmstore; `code` is stable, `message` is for people. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

export function invalidArgument(message: string): StoreError {
  return new StoreError('ERR_INVALID_ARGUMENT', message);
}
