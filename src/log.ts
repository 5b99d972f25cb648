import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * The gateway's structured JSON logger. Authorization headers and key material are redacted by
 * path as a second line of defence; the code never passes keys or prompt text to a log call.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'longcat-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: ['authorization', 'key', '*.authorization', '*.key', 'headers.authorization'],
    },
    destination as never,
  );
}
