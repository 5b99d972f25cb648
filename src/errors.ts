/**
 * The gateway's refusals and failures. Every error a client or operator sees is a
 * `GatewayError` with a stable `code`; its HTTP status comes from one table, and each route
 * family renders it in its own wire shape (see `openAiErrorBody`, `anthropicErrorBody`).
 */
export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  invalid_api_key: 401,
  invalid_admin_token: 401,
  insufficient_balance: 402,
  account_suspended: 403,
  refund_pending: 403,
  model_not_found: 404,
  account_not_found: 404,
  key_not_found: 404,
  refund_not_found: 404,
  route_not_found: 404,
  account_exists: 409,
  idempotency_conflict: 409,
  refund_already_pending: 409,
  refund_not_pending: 409,
  requests_in_flight: 409,
  request_too_large: 413,
  refund_below_minimum: 422,
  balance_reserved: 429,
  internal_error: 500,
  upstream_unreachable: 502,
  billing_unavailable: 503,
  admin_disabled: 503,
  upstream_quota_exhausted: 503,
  shutting_down: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before trying again, sent as `Retry-After`. */
  readonly retryAfterSeconds: number | undefined;
  readonly param: string | null;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryAfterSeconds?: number; param?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.param = options.param ?? null;
  }
}

/** Redis could not be reached or answered with an error: the store is treated as down. */
export class StoreUnavailableError extends GatewayError {
  constructor(cause: unknown) {
    super('billing_unavailable', 'The balance store is unreachable; try again shortly.', {
      retryAfterSeconds: 1,
      cause,
    });
  }
}

/** The error family a status belongs to, as OpenAI and Anthropic name them. */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'billing_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

/** `{"error":{"message","type","code","param"}}`, the OpenAI error shape. */
export function openAiErrorBody(error: GatewayError) {
  return {
    error: {
      message: error.message,
      type: errorType(error.status),
      code: error.code,
      param: error.param,
    },
  };
}

/**
 * `{"type":"error","error":{"type","message"}}`, the Anthropic error shape. The shape has no
 * `code` field, so the gateway's code goes in `error.type`, where Anthropic clients look.
 */
export function anthropicErrorBody(error: GatewayError) {
  return { type: 'error', error: { type: error.code, message: error.message } };
}

/** What ioredis and Node say when the connection to Redis is gone, slow or not ready. */
const STORE_FAILURE = new RegExp(
  [
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'EPIPE',
    'Connection is closed',
    "Stream isn't writeable",
    'Command timed out',
    'LOADING',
    'MaxRetriesPerRequest',
  ].join('|'),
);

/** Whether an error came from losing the connection to Redis rather than from a bug. */
export function isStoreFailure(thrown: unknown): boolean {
  if (thrown instanceof StoreUnavailableError) return true;
  const error = thrown as Error | undefined;
  return STORE_FAILURE.test(`${error?.name ?? ''} ${error?.message ?? ''}`);
}

/** Wraps anything thrown into a `GatewayError`, keeping the original as its cause. */
export function asGatewayError(thrown: unknown): GatewayError {
  if (thrown instanceof GatewayError) return thrown;
  if (isStoreFailure(thrown)) return new StoreUnavailableError(thrown);
  return new GatewayError('internal_error', 'The gateway failed to handle the request.', {
    cause: thrown,
  });
}
