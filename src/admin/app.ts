import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { grantCredits, grantPack } from '../accounts/grants.js';
import {
  createAccount,
  createKey,
  revokeKey,
  setSuspension,
  topUp,
} from '../accounts/operations.js';
import { accountRefunds, approveRefund, listRefunds, rejectRefund } from '../accounts/refunds.js';
import { accountView, readAccountState } from '../accounts/state.js';
import { monthlyBill, usagePage } from '../accounts/usage.js';
import type { Deps } from '../deps.js';
import { GatewayError } from '../errors.js';
import { errorResponder, jsonBody, notFound } from '../http/errors.js';
import { healthCheck } from '../http/health.js';
import {
  CREATE_ACCOUNT,
  CREDIT_GRANT,
  parseBody,
  REFUND_REJECTION,
  SUSPENSION,
  TOKEN_PACK,
  TOP_UP,
} from '../http/schemas.js';
import { adminAuth } from './auth.js';

type AdminEnv = { Bindings: HttpBindings };

/** The operator listener: `/admin/*` behind the operator token, `/metrics` and `/healthz`. */
export function createAdminApp(deps: Deps) {
  const app = new Hono<AdminEnv>();
  app.onError(errorResponder(deps.logger));
  app.notFound(() => {
    throw notFound();
  });
  app.get('/healthz', healthCheck(deps));
  app.get('/metrics', async function scrape(c) {
    return c.text(await deps.metrics.registry.metrics(), 200, {
      'content-type': deps.metrics.registry.contentType,
    });
  });

  app.use('/admin/*', adminAuth(deps.config.adminToken));
  app.post('/admin/accounts', async function postAccount(c) {
    const { id } = parseBody(CREATE_ACCOUNT, await jsonBody(c));
    if (!(await createAccount(deps.scripts, id))) {
      throw new GatewayError('account_exists', `The account '${id}' exists already.`);
    }
    return c.json(await viewOf(deps, id), 201);
  });
  app.get('/admin/accounts/:id', async function getAccount(c) {
    return c.json(await viewOf(deps, c.req.param('id')));
  });
  app.post('/admin/accounts/:id/keys', async function postKey(c) {
    return c.json(await createKey(deps.redis, c.req.param('id')), 201);
  });
  app.delete('/admin/keys/:keyId', async function deleteKey(c) {
    await revokeKey(deps.redis, c.req.param('keyId'));
    return c.body(null, 204);
  });
  app.post('/admin/accounts/:id/topups', async function postTopUp(c) {
    const order = parseBody(TOP_UP, await jsonBody(c));
    const credited = await topUp(deps.scripts, c.req.param('id'), {
      orderId: order.order_id,
      amountNano: order.amount,
      method: order.method,
      paidAtGiven: order.paid_at !== undefined,
      paidAtMs: order.paid_at ?? Date.now(),
    });
    return c.json(await viewOf(deps, c.req.param('id')), credited ? 201 : 200);
  });
  app.put('/admin/accounts/:id/suspension', async function suspend(c) {
    const { reason } = parseBody(SUSPENSION, await jsonBody(c));
    await setSuspension(deps.scripts, c.req.param('id'), reason);
    return c.json(await viewOf(deps, c.req.param('id')));
  });
  app.delete('/admin/accounts/:id/suspension', async function resume(c) {
    await setSuspension(deps.scripts, c.req.param('id'), '');
    return c.json(await viewOf(deps, c.req.param('id')));
  });
  app.post('/admin/accounts/:id/credits', async function postCredits(c) {
    const grant = parseBody(CREDIT_GRANT, await jsonBody(c));
    const fresh = await grantCredits(deps.scripts, c.req.param('id'), {
      grantId: grant.grant_id,
      amountNano: grant.amount,
      expiresAtMs: grant.expires_at ?? undefined,
    });
    return c.json(await viewOf(deps, c.req.param('id')), fresh ? 201 : 200);
  });
  app.post('/admin/accounts/:id/token-packs', async function postPack(c) {
    const pack = parseBody(TOKEN_PACK, await jsonBody(c));
    const fresh = await grantPack(deps.scripts, c.req.param('id'), {
      packId: pack.pack_id,
      tokens: pack.tokens,
      purchasedAtMs: pack.purchased_at,
    });
    return c.json(await viewOf(deps, c.req.param('id')), fresh ? 201 : 200);
  });
  app.get('/admin/refunds', async function getRefunds(c) {
    return c.json({ data: await listRefunds(deps.redis, c.req.query('status')) });
  });
  app.post('/admin/refunds/:id/approve', async function approve(c) {
    // Long enough for ordinary requests to finish; a long stream gets a 409 to retry after.
    const waitMs = Math.min(deps.config.requestTimeoutMs, 60_000);
    return c.json(await approveRefund(deps.scripts, deps.redis, c.req.param('id'), { waitMs }));
  });
  app.post('/admin/refunds/:id/reject', async function reject(c) {
    const { reason } = parseBody(REFUND_REJECTION, await jsonBody(c));
    return c.json(await rejectRefund(deps.scripts, deps.redis, c.req.param('id'), reason));
  });
  app.get('/admin/accounts/:id/refunds', async function getAccountRefunds(c) {
    await viewOf(deps, c.req.param('id'));
    return c.json({ data: await accountRefunds(deps.redis, c.req.param('id')) });
  });
  app.get('/admin/accounts/:id/bills/:month', async function getBill(c) {
    await viewOf(deps, c.req.param('id'));
    return c.json(await monthlyBill(deps.redis, c.req.param('id'), c.req.param('month')));
  });
  app.get('/admin/accounts/:id/usage', async function getUsage(c) {
    await viewOf(deps, c.req.param('id'));
    return c.json(
      await usagePage(deps.redis, c.req.param('id'), c.req.query('limit'), c.req.query('cursor')),
    );
  });
  return app;
}

/** The account view, or 404 when there is no such account. */
export async function viewOf(deps: Deps, accountId: string) {
  const state = await readAccountState(deps.scripts, accountId);
  if (!state) throw new GatewayError('account_not_found', `There is no account '${accountId}'.`);
  return accountView(state);
}
