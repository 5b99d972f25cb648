import { parseArgs } from 'node:util';
import {
  type ApiReply,
  COMMANDS,
  type Command,
  OPTION_PLACEHOLDERS,
  synopsis,
  UsageError,
  type Values,
} from './commands.js';

/** Where the CLI writes and what it reads; tests pass their own to capture the output. */
export interface CliIo {
  stdout: TextOutput;
  stderr: TextOutput;
  env: Record<string, string | undefined>;
  fetch: typeof fetch;
}

export interface TextOutput {
  write(text: string): unknown;
}

/** Exit statuses, as CONTRACT.md ("Operator CLI") fixes them. */
export const EXIT = { done: 0, refused: 1, usage: 2 } as const;

const PROGRAM = 'longcat-gateway';
const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8081';
/** Operator calls are short; a gateway that says nothing for this long is reported, not awaited. */
const DEFAULT_TIMEOUT_MS = 30_000;

const GLOBAL_OPTIONS = {
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The gateway (or the way to it) refused; `document` is its JSON body when `--json` asked. */
class Refusal extends Error {
  readonly document: string | undefined;

  constructor(message: string, document?: string) {
    super(message);
    this.name = 'Refusal';
    this.document = document;
  }
}

interface Invocation {
  name: string;
  command: Command;
  values: Values;
  adminUrl: string;
  token: string;
  json: boolean;
}

/**
 * Runs one operator command against the operator API and returns the exit status:
 * 0 done, 1 refused by the gateway (or unreachable), 2 wrong usage.
 *
 * @example await runCli(['accounts', 'show', 'acme', '--json']) // prints the account view
 */
export async function runCli(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  const cli: CliIo = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    fetch: io.fetch ?? globalThis.fetch,
  };
  try {
    const invocation = parseInvocation(argv, cli.env);
    if (invocation === 'help') {
      writeLines(cli.stdout, usageText());
      return EXIT.done;
    }
    const reply = await exchange(invocation, cli.fetch);
    printReply(cli.stdout, invocation, reply);
    return EXIT.done;
  } catch (error) {
    return explain(error, cli);
  }
}

function parseInvocation(argv: string[], env: CliIo['env']): Invocation | 'help' {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help === true || positionals[0] === 'help') return 'help';

  const { name, command, rest } = resolveCommand(positionals);
  const options = commandOptions(name, command, values);
  return {
    name,
    command,
    values: { ...bindArguments(name, command, rest), ...options },
    adminUrl: adminUrl(stringOption(values['admin-url']) ?? env.ADMIN_URL),
    token: operatorToken(stringOption(values.token) ?? env.ADMIN_TOKEN),
    json: values.json === true,
  };
}

/** Parses with every option any command knows; which command may use which is checked after. */
function parseCommandLine(argv: string[]) {
  const commandOptions = Object.fromEntries(
    Object.keys(OPTION_PLACEHOLDERS).map((name) => [name, { type: 'string' as const }]),
  );
  try {
    return parseArgs({
      args: argv,
      options: { ...commandOptions, ...GLOBAL_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function stringOption(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Finds the command in the first one or two words: `topup …`, `accounts show …`. */
function resolveCommand(positionals: string[]) {
  const [first, second, ...more] = positionals;
  if (first === undefined) throw new UsageError('No command given.');

  const pair = `${first} ${second ?? ''}`;
  const paired = COMMANDS[pair];
  if (second !== undefined && paired) return { name: pair, command: paired, rest: more };
  const single = COMMANDS[first];
  if (single) return { name: first, command: single, rest: positionals.slice(1) };

  const verbs = Object.keys(COMMANDS)
    .filter((name) => name.startsWith(`${first} `))
    .map((name) => name.slice(first.length + 1));
  if (verbs.length === 0) throw new UsageError(`Unknown command '${first}'.`);
  const given = second === undefined ? 'nothing' : `'${second}'`;
  throw new UsageError(
    `'${first}' takes ${verbs.join(', ')}; got ${given}.`,
    verbs.map((verb) => `${first} ${verb}`),
  );
}

function bindArguments(name: string, command: Command, given: string[]): Values {
  const missing = command.args[given.length];
  if (missing !== undefined) throw new UsageError(`${name}: ${missing} is missing.`, [name]);
  const extra = given[command.args.length];
  if (extra !== undefined) throw new UsageError(`${name}: unexpected argument '${extra}'.`, [name]);
  return Object.fromEntries(command.args.map((placeholder, i) => [placeholder, given[i]]));
}

/** The command's own options; an option another command takes is wrong usage here. */
function commandOptions(
  name: string,
  command: Command,
  values: Record<string, string | boolean | undefined>,
): Values {
  const allowed = new Set<string>([...command.required, ...command.optional]);
  const options: Values = {};
  for (const option of Object.keys(OPTION_PLACEHOLDERS)) {
    const value = stringOption(values[option]);
    if (value === undefined) continue;
    if (!allowed.has(option)) throw new UsageError(`${name} takes no --${option}.`, [name]);
    options[option] = value;
  }
  const missing = command.required.find((option) => options[option] === undefined);
  if (missing) throw new UsageError(`${name}: --${missing} is required.`, [name]);
  return options;
}

function adminUrl(given: string | undefined): string {
  const text = given || DEFAULT_ADMIN_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--admin-url '${text}' is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--admin-url '${text}' is not an http(s) URL.`);
  }
  // Kept as text, not resolved against: a gateway mounted under a path prefix keeps its prefix.
  return text.replace(/\/+$/, '');
}

function operatorToken(given: string | undefined): string {
  if (!given) throw new UsageError('No operator token: set ADMIN_TOKEN (or pass --token).');
  return given;
}

/** Sends the command's request and reads the whole reply; a refusal is thrown. */
async function exchange(invocation: Invocation, fetchApi: typeof fetch): Promise<ApiReply> {
  const request = invocation.command.request(invocation.values);
  const headers: Record<string, string> = { authorization: `Bearer ${invocation.token}` };
  if (request.body) headers['content-type'] = 'application/json';
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  let reply: ApiReply;
  try {
    const response = await fetchApi(`${invocation.adminUrl}${request.path}`, {
      method: request.method,
      headers,
      body: request.body ? JSON.stringify(request.body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    reply = { status: response.status, text, body: parseJson(text) };
  } catch (error) {
    throw new Refusal(unreachable(invocation.adminUrl, timeoutMs, error));
  }

  if (reply.status >= 400) {
    throw new Refusal(refusalMessage(reply, invocation.adminUrl), documentFor(invocation, reply));
  }
  return reply;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function unreachable(adminUrl: string, timeoutMs: number, error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return (
      `The operator API at ${adminUrl} did not answer within ${timeoutMs / 1000} s. ` +
      'The command may still take effect there: check before repeating it.'
    );
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return (
    `Cannot reach the operator API at ${adminUrl} (${detail}). ` +
    'Is the gateway running, and is --admin-url (or ADMIN_URL) its operator listener?'
  );
}

/** `{"error":{"message","code"}}`, the shape of every operator API refusal. */
function apiError(body: unknown): { message: string; code: string } | undefined {
  const error = (body as { error?: { message?: unknown; code?: unknown } } | undefined)?.error;
  if (typeof error?.message !== 'string' || typeof error.code !== 'string') return undefined;
  return { message: error.message, code: error.code };
}

function refusalMessage(reply: ApiReply, adminUrl: string): string {
  const error = apiError(reply.body);
  const tag = `${reply.status}${error ? ` ${error.code}` : ''}`;
  if (reply.status === 401) {
    return `Refused (${tag}): ADMIN_TOKEN is wrong or missing; the gateway did not accept it.`;
  }
  if (error?.code === 'admin_disabled') {
    return (
      `Refused (${tag}): the gateway has no ADMIN_TOKEN set, so its operator API is off. ` +
      'Start the gateway with ADMIN_TOKEN set.'
    );
  }
  if (error) return `Refused (${tag}): ${error.message}`;
  return `Refused (${tag}): ${adminUrl} answered without an operator API error; is it the gateway?`;
}

function documentFor(invocation: Invocation, reply: ApiReply): string | undefined {
  return invocation.json && reply.body !== undefined ? reply.text : undefined;
}

function printReply(stdout: TextOutput, invocation: Invocation, reply: ApiReply): void {
  // `--json` relays the gateway's own text, so a script sees exactly what the API sent; a 204
  // has no document and prints nothing.
  if (invocation.json) {
    if (reply.text !== '') writeLines(stdout, [reply.text]);
    return;
  }
  writeLines(stdout, invocation.command.report(reply, invocation.values));
}

function explain(error: unknown, cli: CliIo): number {
  if (error instanceof UsageError) {
    const usage = error.commands.length
      ? error.commands.map((name) => `Usage: ${PROGRAM} ${synopsis(name)}`)
      : usageText();
    writeLines(cli.stderr, [`${PROGRAM}: ${error.message}`, '', ...usage]);
    return EXIT.usage;
  }
  if (error instanceof Refusal) {
    if (error.document !== undefined) writeLines(cli.stdout, [error.document]);
    writeLines(cli.stderr, [`${PROGRAM}: ${error.message}`]);
    return EXIT.refused;
  }
  throw error;
}

function usageText(): string[] {
  return [
    `Usage: ${PROGRAM} <command> [--admin-url URL] [--token TOKEN] [--json]`,
    '',
    'Commands:',
    ...Object.keys(COMMANDS).map((name) => `  ${synopsis(name)}`),
    '',
    'Options:',
    `  --admin-url URL  the operator listener (env ADMIN_URL, default ${DEFAULT_ADMIN_URL})`,
    '  --token TOKEN    the operator token (env ADMIN_TOKEN, which keeps it out of `ps`)',
    "  --json           print the API's JSON as it came",
    '  -h, --help       print this text',
    '',
    'Exit status: 0 done, 1 refused by the gateway, 2 wrong usage.',
  ];
}

function writeLines(output: TextOutput, lines: string[]): void {
  output.write(`${lines.join('\n')}\n`);
}
