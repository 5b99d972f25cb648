import { describe, expect, it } from 'vitest';
import { costNano, kindCostNano } from './cost.js';
import { formatUsd, parseUsd, sumUsd } from './nano.js';
import { BUILT_IN_PRICES, PriceBook } from './prices.js';

const JAN_2026 = Date.parse('2026-01-15T00:00:00Z');
const BUILT_IN_FALLBACK = { uncached_input: 0, cached_input: 0, output: 0 };

describe('nano-dollar amounts', () => {
  it('parses and formats decimal strings exactly', () => {
    expect(parseUsd('0.7824')).toBe(782_400_000n);
    expect(parseUsd('-0.35')).toBe(-350_000_000n);
    expect(parseUsd('12345678901.123456789')).toBe(12_345_678_901_123_456_789n);
    expect(formatUsd(782_400_000n)).toBe('0.7824');
    expect(formatUsd(-350_000_000n)).toBe('-0.35');
    expect(formatUsd(5_000_000_000n)).toBe('5');
    expect(formatUsd(1n)).toBe('0.000000001');
  });

  it('refuses what it would have to round or guess', () => {
    for (const bad of ['0.0000000001', '1e3', '1,5', '', '.5', '01', '0x10', ' 1']) {
      expect(parseUsd(bad)).toBeUndefined();
    }
  });

  it('adds amounts without float drift', () => {
    expect(sumUsd(['0.1', '0.2'])).toBe('0.3');
  });
});

describe('prices', () => {
  const book = new PriceBook(BUILT_IN_PRICES);

  it('bills the seed example at exactly $0.7824 at discounted prices', () => {
    const prices = book.priceAt('LongCat-2.0', JAN_2026);
    const counts = { uncached_input: 600_000, cached_input: 400_000, output: 500_000 };
    expect(prices).toBeDefined();
    expect(formatUsd(costNano(counts, prices ?? BUILT_IN_FALLBACK))).toBe('0.7824');
  });

  it('uses list prices outside a discount window', () => {
    const prices = book.priceAt('LongCat-2.0', Date.parse('2025-12-31T23:59:59Z'));
    const million = { uncached_input: 1_000_000, cached_input: 1_000_000, output: 1_000_000 };
    expect(formatUsd(costNano(million, prices ?? BUILT_IN_FALLBACK))).toBe('3.715');
  });

  it('closes a discount window at `until`', () => {
    const windowed = new PriceBook({
      M: {
        uncached_input: '1',
        cached_input: '1',
        output: '1',
        discounts: [
          {
            from: '2026-01-01T00:00:00Z',
            until: '2026-02-01T00:00:00Z',
            uncached_input: '0.5',
            cached_input: '0.5',
            output: '0.5',
          },
        ],
      },
    });
    expect(windowed.priceAt('M', Date.parse('2026-01-31T23:59:59Z'))?.output).toBe(500_000);
    expect(windowed.priceAt('M', Date.parse('2026-02-01T00:00:00Z'))?.output).toBe(1_000_000);
    expect(windowed.priceAt('other', JAN_2026)).toBeUndefined();
  });

  it('rounds a sub-nano-dollar remainder half up, kind by kind', () => {
    // $0.0005 per million tokens is 500 pico-dollars a token: one token is half a nano-dollar.
    expect(kindCostNano(1, 500)).toBe(1n);
    expect(kindCostNano(1, 499)).toBe(0n);
    expect(kindCostNano(3, 500)).toBe(2n);
  });

  it('refuses a price table it could not bill exactly', () => {
    const table = (output: string) => ({
      M: { uncached_input: '1', cached_input: '1', output, discounts: [] },
    });
    expect(() => new PriceBook(table('0.0000001'))).toThrow(/fractional digits/);
    expect(() => new PriceBook(table('1.5e3'))).toThrow();
  });
});
