import { readFileSync } from 'node:fs';
import { Big } from 'big.js';
import { z } from 'zod';

/** The token kinds a request is billed for, in the order token packs cover them. */
export const TOKEN_KINDS = ['uncached_input', 'cached_input', 'output'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/**
 * Per-token prices in pico-dollars (1e-12 USD), the unit the settle script multiplies by.
 * A price of $0.30 per million tokens is 300,000 pico-dollars per token.
 */
export type PicoPerToken = Record<TokenKind, number>;

/** Prices are accepted up to a millionth of a dollar per million tokens: a whole pico-dollar. */
const PRICE = z.string().regex(/^(0|[1-9]\d{0,2})(\.\d{1,6})?$/, {
  message: 'a decimal string in USD per million tokens, at most 6 fractional digits, below 1000',
});

const RATE_FIELDS = { uncached_input: PRICE, cached_input: PRICE, output: PRICE };

const TIMESTAMP = z.iso.datetime({ offset: true });

const PRICE_TABLE = z.record(
  z.string().min(1),
  z.object({
    ...RATE_FIELDS,
    discounts: z
      .array(z.object({ ...RATE_FIELDS, from: TIMESTAMP, until: TIMESTAMP.nullable() }))
      .default([]),
  }),
);

export type PriceTableInput = z.input<typeof PRICE_TABLE>;

/** The built-in table, exactly as CONTRACT.md states it. */
export const BUILT_IN_PRICES: PriceTableInput = {
  'LongCat-2.0': {
    uncached_input: '0.75',
    cached_input: '0.015',
    output: '2.95',
    discounts: [
      {
        from: '2026-01-01T00:00:00Z',
        until: null,
        uncached_input: '0.30',
        cached_input: '0.006',
        output: '1.20',
      },
    ],
  },
};

interface Window {
  fromMs: number;
  untilMs: number;
  prices: PicoPerToken;
}

interface ModelPrices {
  base: PicoPerToken;
  discounts: Window[];
}

/** Resolves the price of each token kind for a model at an instant, discount windows included. */
export class PriceBook {
  readonly #models: Map<string, ModelPrices>;

  constructor(table: PriceTableInput) {
    const parsed = PRICE_TABLE.parse(table);
    this.#models = new Map(
      Object.entries(parsed).map(([model, entry]) => [
        model,
        {
          base: toPico(entry),
          discounts: entry.discounts.map((d) => ({
            fromMs: Date.parse(d.from),
            untilMs: d.until === null ? Number.POSITIVE_INFINITY : Date.parse(d.until),
            prices: toPico(d),
          })),
        },
      ]),
    );
  }

  models(): string[] {
    return [...this.#models.keys()];
  }

  /** Prices in effect at `atMs`, or `undefined` when the model has no price. */
  priceAt(model: string, atMs: number): PicoPerToken | undefined {
    const entry = this.#models.get(model);
    if (!entry) return undefined;

    const discount = entry.discounts.find((d) => d.fromMs <= atMs && atMs < d.untilMs);
    return discount ? discount.prices : entry.base;
  }
}

function toPico(rates: Record<TokenKind, string>): PicoPerToken {
  // USD per 1e6 tokens × 1e12 pico per USD = pico per token × 1e6.
  const pico = (usdPerMillion: string) => new Big(usdPerMillion).times(1_000_000).toNumber();
  return {
    uncached_input: pico(rates.uncached_input),
    cached_input: pico(rates.cached_input),
    output: pico(rates.output),
  };
}

/** Loads `PRICES_FILE`, or the built-in table when no file is named. */
export function loadPriceBook(pricesFile: string | undefined): PriceBook {
  if (!pricesFile) return new PriceBook(BUILT_IN_PRICES);

  const raw: unknown = JSON.parse(readFileSync(pricesFile, 'utf8'));
  return new PriceBook(raw as PriceTableInput);
}
