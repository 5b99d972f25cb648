// The image's HEALTHCHECK (deploy/Dockerfile). Loopback reaches the admin listener whether
// ADMIN_HOST is 127.0.0.1 or 0.0.0.0; a gateway that cannot reach Redis reports unhealthy.
const port = process.env.ADMIN_PORT ?? '8081';

try {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, {
    signal: AbortSignal.timeout(2000),
  });
  process.exitCode = response.ok ? 0 : 1;
} catch {
  process.exitCode = 1;
}
