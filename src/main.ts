import { configFromEnv } from './config.js';
import { startGateway } from './gateway.js';

/** `npm start`: runs the gateway until SIGTERM or SIGINT, then shuts it down gracefully. */
async function main(): Promise<void> {
  const gateway = await startGateway(configFromEnv());
  const stop = async (signal: string) => {
    gateway.deps.logger.info({ signal }, 'shutting down');
    await gateway.close();
    gateway.deps.logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: Error) => {
  process.stderr.write(`longcat-gateway failed to start: ${error.message}\n`);
  process.exit(1);
});
