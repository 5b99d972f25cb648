import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { accountRefunds, requestRefund } from '../accounts/refunds.js';
import { accountView, readAccountState } from '../accounts/state.js';
import { monthlyBill, usagePage } from '../accounts/usage.js';
import { authenticateKeyHolder } from '../auth/key-holder.js';
import type { Deps } from '../deps.js';
import { GatewayError } from '../errors.js';
import { newRequestId } from '../proxy/exchange.js';
import {
  ANTHROPIC_MESSAGES,
  type ApiFormat,
  CHAT_COMPLETIONS,
  RESPONSES,
} from '../proxy/formats.js';
import { serveMetered } from '../proxy/model-api.js';
import { serveModelList } from '../proxy/models.js';
import { errorResponder, jsonBody, notFound } from './errors.js';
import { healthCheck } from './health.js';
import { parseBody, REFUND_REQUEST } from './schemas.js';

type PublicEnv = { Bindings: HttpBindings; Variables: { accountId: string } };

/** The public listener: the model API and the key holder's account API. */
export function createPublicApp(deps: Deps) {
  const app = new Hono<PublicEnv>();
  app.onError(errorResponder(deps.logger));
  app.notFound(() => {
    throw notFound();
  });
  app.get('/healthz', healthCheck(deps));

  const metered = (format: ApiFormat) =>
    async function meteredRoute(c: { env: HttpBindings }) {
      await serveMetered(deps, format, c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    };
  for (const prefix of ['/openai/v1', '/openai', '/v1']) {
    app.post(`${prefix}/chat/completions`, metered(CHAT_COMPLETIONS));
    app.post(`${prefix}/responses`, metered(RESPONSES));
  }
  app.post('/anthropic/v1/messages', metered(ANTHROPIC_MESSAGES));
  for (const path of ['/openai/v1/models', '/v1/models']) {
    app.get(path, async function modelList(c) {
      await serveModelList(deps, c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    });
  }

  for (const path of ['/v1/account', '/v1/account/*']) {
    app.use(path, async function tagRequest(c, next) {
      c.header('x-request-id', newRequestId());
      await next();
    });
    app.use(path, keyHolder(deps));
  }
  app.get('/v1/account', async function showAccount(c) {
    const state = await readAccountState(deps.scripts, c.get('accountId'));
    if (!state) throw new GatewayError('account_not_found', 'The account no longer exists.');
    return c.json(accountView(state));
  });
  app.get('/v1/account/usage', async function showUsage(c) {
    return c.json(
      await usagePage(deps.redis, c.get('accountId'), c.req.query('limit'), c.req.query('cursor')),
    );
  });
  app.get('/v1/account/bills/:month', async function showBill(c) {
    return c.json(await monthlyBill(deps.redis, c.get('accountId'), c.req.param('month')));
  });
  app.post('/v1/account/refunds', async function postRefund(c) {
    const { reason } = parseBody(REFUND_REQUEST, await jsonBody(c));
    const refund = await requestRefund(deps.scripts, deps.redis, c.get('accountId'), reason);
    return c.json(refund, 201);
  });
  app.get('/v1/account/refunds', async function showRefunds(c) {
    return c.json({ data: await accountRefunds(deps.redis, c.get('accountId')) });
  });
  return app;
}

function keyHolder(deps: Deps) {
  return async function authenticate(
    c: { req: { header(name: string): string | undefined }; set(k: 'accountId', v: string): void },
    next: () => Promise<void>,
  ) {
    const accountId = await authenticateKeyHolder(
      deps.redis,
      c.req.header('authorization'),
      c.req.header('x-api-key'),
    );
    c.set('accountId', accountId);
    await next();
  };
}
