import {
  type AccountView,
  accountLines,
  approvalLines,
  type NewKey,
  newKeyLines,
  type RefundApproval,
  type RefundList,
  refundListLines,
  type UsagePage,
  usageLines,
  usd,
} from './output.js';

/**
 * The operator CLI's commands, one row each: which arguments and options it takes, the operator
 * API request it becomes, and how its reply reads to a person. CONTRACT.md ("Operator CLI")
 * lists the commands; the routes are those of its "Operator API".
 */

export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  /** How long to wait for the answer, when the default is too short for this route. */
  timeoutMs?: number;
}

export interface ApiReply {
  status: number;
  /** The body as the gateway sent it, for `--json`. */
  text: string;
  body: unknown;
}

/** Positional arguments by placeholder (`ACCOUNT`), options by name (`order`). */
export type Values = Record<string, string | undefined>;

export interface Command {
  args: readonly string[];
  required: readonly CommandOption[];
  optional: readonly CommandOption[];
  request(values: Values): ApiRequest;
  report(reply: ApiReply, values: Values): string[];
}

/** The command line is not one the CLI understands; `commands` are the ones it may have meant. */
export class UsageError extends Error {
  readonly commands: readonly string[];

  constructor(message: string, commands: readonly string[] = []) {
    super(message);
    this.name = 'UsageError';
    this.commands = commands;
  }
}

/** Every command option, with the placeholder the usage text shows for its value. */
export const OPTION_PLACEHOLDERS = {
  order: 'ID',
  method: 'alipay|wechat_pay',
  'paid-at': 'T',
  id: 'ID',
  expires: 'T',
  'purchased-at': 'T',
  reason: 'TEXT',
  status: 'S',
  limit: 'N',
  cursor: 'CURSOR',
} as const;

export type CommandOption = keyof typeof OPTION_PLACEHOLDERS;

type Input<A extends string, R extends CommandOption, O extends CommandOption> = Record<
  A | R,
  string
> &
  Partial<Record<O, string>>;

interface CommandSpec<A extends string, R extends CommandOption, O extends CommandOption> {
  args: readonly A[];
  required?: readonly R[];
  optional?: readonly O[];
  request(input: Input<A, R, O>): ApiRequest;
  report(reply: ApiReply, input: Input<A, R, O>): string[];
}

/** Types one row of the table by the names it declares. */
function command<
  const A extends string,
  const R extends CommandOption = never,
  const O extends CommandOption = never,
>(spec: CommandSpec<A, R, O>): Command {
  // The parser binds every declared argument and checks every required option before a row's
  // functions run, which is what makes this narrowing true.
  const typed = (values: Values) => values as Input<A, R, O>;
  return {
    args: spec.args,
    required: spec.required ?? [],
    optional: spec.optional ?? [],
    request: (values) => spec.request(typed(values)),
    report: (reply, values) => spec.report(reply, typed(values)),
  };
}

function accountPath(accountId: string): string {
  return `/admin/accounts/${encodeURIComponent(accountId)}`;
}

function refundPath(refundId: string, action: 'approve' | 'reject'): string {
  return `/admin/refunds/${encodeURIComponent(refundId)}/${action}`;
}

function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) params.set(name, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

const PAYMENT_METHODS = ['alipay', 'wechat_pay'] as const;

function paymentMethod(text: string): (typeof PAYMENT_METHODS)[number] {
  const method = PAYMENT_METHODS.find((known) => known === text);
  if (!method) {
    throw new UsageError(`--method must be alipay or wechat_pay, not '${text}'.`, ['topup']);
  }
  return method;
}

/** Token counts are JSON integers in the API; a count a double cannot hold exactly is refused. */
function tokenCount(text: string): number {
  const tokens = Number(text);
  if (!/^[1-9]\d*$/.test(text) || !Number.isSafeInteger(tokens)) {
    throw new UsageError(`TOKENS must be a positive whole number, not '${text}'.`, ['packs grant']);
  }
  return tokens;
}

function isAccountView(body: unknown): body is AccountView {
  return typeof body === 'object' && body !== null && 'balance' in body && 'paid_balance' in body;
}

/**
 * The idempotent routes answer 201 when they acted and 200 when the same request was made
 * before; the operator should see which, since a replay moved no money.
 */
function idempotentLines(
  reply: ApiReply,
  acted: string,
  replayed: string,
  details: (view: AccountView) => string[] = (view) => [`Balance now ${usd(view.balance)}.`],
): string[] {
  const headline = reply.status === 201 ? acted : replayed;
  return [headline, ...(isAccountView(reply.body) ? details(reply.body) : [])];
}

/**
 * Where the granted pack stands in the account view. A replayed grant may name a pack that has
 * since expired or been used up, and the view no longer lists it, so say so.
 */
function packStanding(packId: string, view: AccountView): string[] {
  const pack = view.token_packs.find((listed) => listed.pack_id === packId);
  if (pack) {
    return [`Pack ${packId}: ${pack.tokens_remaining} tokens left, expires ${pack.expires_at}.`];
  }
  return [`Pack ${packId} is not among the account's valid packs: expired or used up since.`];
}

const accountCommands = {
  'accounts create': command({
    args: ['ID'],
    request: ({ ID }) => ({ method: 'POST', path: '/admin/accounts', body: { id: ID } }),
    report: (reply) => accountLines(reply.body as AccountView),
  }),
  'accounts show': command({
    args: ['ID'],
    request: ({ ID }) => ({ method: 'GET', path: accountPath(ID) }),
    report: (reply) => accountLines(reply.body as AccountView),
  }),
  'keys create': command({
    args: ['ACCOUNT'],
    request: ({ ACCOUNT }) => ({ method: 'POST', path: `${accountPath(ACCOUNT)}/keys` }),
    report: (reply, { ACCOUNT }) => newKeyLines(ACCOUNT, reply.body as NewKey),
  }),
  'keys revoke': command({
    args: ['KEY_ID'],
    request: ({ KEY_ID }) => ({
      method: 'DELETE',
      path: `/admin/keys/${encodeURIComponent(KEY_ID)}`,
    }),
    report: (_reply, { KEY_ID }) => [`Revoked key ${KEY_ID}; it stops working at once.`],
  }),
};

// Amounts go into the body exactly as typed: a decimal string, never through a JS number, so
// the gateway's own parser is the one that decides what is a valid amount.
const moneyCommands = {
  topup: command({
    args: ['ACCOUNT', 'AMOUNT'],
    required: ['order', 'method'],
    optional: ['paid-at'],
    request: (input) => ({
      method: 'POST',
      path: `${accountPath(input.ACCOUNT)}/topups`,
      body: {
        order_id: input.order,
        amount: input.AMOUNT,
        method: paymentMethod(input.method),
        paid_at: input['paid-at'],
      },
    }),
    report: (reply, input) =>
      idempotentLines(
        reply,
        `Credited order ${input.order}: ${usd(input.AMOUNT)} to ${input.ACCOUNT}.`,
        `Order ${input.order} was credited before; nothing changed.`,
      ),
  }),
  'credits grant': command({
    args: ['ACCOUNT', 'AMOUNT'],
    required: ['id'],
    optional: ['expires'],
    request: (input) => ({
      method: 'POST',
      path: `${accountPath(input.ACCOUNT)}/credits`,
      body: { grant_id: input.id, amount: input.AMOUNT, expires_at: input.expires },
    }),
    report: (reply, input) =>
      idempotentLines(
        reply,
        `Granted ${usd(input.AMOUNT)} of credits to ${input.ACCOUNT} (grant ${input.id}, ${
          input.expires ? `expires ${input.expires}` : 'no expiry'
        }).`,
        `Grant ${input.id} was made before; nothing changed.`,
      ),
  }),
  'packs grant': command({
    args: ['ACCOUNT', 'TOKENS'],
    required: ['id'],
    optional: ['purchased-at'],
    request: (input) => ({
      method: 'POST',
      path: `${accountPath(input.ACCOUNT)}/token-packs`,
      body: {
        pack_id: input.id,
        tokens: tokenCount(input.TOKENS),
        purchased_at: input['purchased-at'],
      },
    }),
    report: (reply, input) =>
      idempotentLines(
        reply,
        `Granted pack ${input.id}: ${input.TOKENS} tokens to ${input.ACCOUNT}.`,
        `Pack ${input.id} was granted before; nothing changed.`,
        (view) => packStanding(input.id, view),
      ),
  }),
};

/** What an account may do from now on, and what it did. */
const controlCommands = {
  suspend: command({
    args: ['ACCOUNT'],
    required: ['reason'],
    request: ({ ACCOUNT, reason }) => ({
      method: 'PUT',
      path: `${accountPath(ACCOUNT)}/suspension`,
      body: { reason },
    }),
    report: (_reply, { ACCOUNT }) => [`Suspended ${ACCOUNT}; its next request is refused.`],
  }),
  resume: command({
    args: ['ACCOUNT'],
    request: ({ ACCOUNT }) => ({ method: 'DELETE', path: `${accountPath(ACCOUNT)}/suspension` }),
    report: (_reply, { ACCOUNT }) => [`Resumed ${ACCOUNT}; its requests are admitted again.`],
  }),
  usage: command({
    args: ['ACCOUNT'],
    optional: ['limit', 'cursor'],
    request: ({ ACCOUNT, limit, cursor }) => ({
      method: 'GET',
      path: withQuery(`${accountPath(ACCOUNT)}/usage`, { limit, cursor }),
    }),
    report: (reply) => usageLines(reply.body as UsagePage),
  }),
};

const refundCommands = {
  'refunds list': command({
    args: [],
    optional: ['status'],
    request: ({ status }) => ({ method: 'GET', path: withQuery('/admin/refunds', { status }) }),
    report: (reply) => refundListLines((reply.body as RefundList).data),
  }),
  'refunds approve': command({
    args: ['ID'],
    // The gateway holds the approval open until requests in flight have settled, which may take
    // minutes. Node's fetch gives up on a reply's headers after 300 s; stop just before that so
    // the message is ours and says the approval may still go through.
    request: ({ ID }) => ({ method: 'POST', path: refundPath(ID, 'approve'), timeoutMs: 290_000 }),
    report: (reply) => approvalLines(reply.body as RefundApproval),
  }),
  'refunds reject': command({
    args: ['ID'],
    required: ['reason'],
    request: ({ ID, reason }) => ({
      method: 'POST',
      path: refundPath(ID, 'reject'),
      body: { reason },
    }),
    report: (_reply, { ID }) => [
      `Rejected refund ${ID}; the account's calls and top-ups are admitted again.`,
    ],
  }),
};

export const COMMANDS: Record<string, Command> = {
  ...accountCommands,
  ...moneyCommands,
  ...controlCommands,
  ...refundCommands,
};

/** One command's line of the usage text, built from its row. */
export function synopsis(name: string): string {
  const row = COMMANDS[name];
  if (!row) return name;
  const required = row.required.map((option) => `--${option} ${OPTION_PLACEHOLDERS[option]}`);
  const optional = row.optional.map((option) => `[--${option} ${OPTION_PLACEHOLDERS[option]}]`);
  return [name, ...row.args, ...required, ...optional].join(' ');
}
