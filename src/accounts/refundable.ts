/** A paid top-up order as the refund rules see it. */
export interface PaidOrder {
  orderId: string;
  method: string;
  amountNano: bigint;
  paidAtMs: number;
  refundedNano: bigint;
}

export interface RefundablePart {
  orderId: string;
  method: string;
  amountNano: bigint;
}

/** The earliest payment time still refundable at `nowMs`: twelve calendar months back, UTC. */
export function refundWindowStart(nowMs: number): number {
  const start = new Date(nowMs);
  start.setUTCFullYear(start.getUTCFullYear() - 1);
  return start.getTime();
}

/**
 * The unconsumed part of each order paid in the last twelve months. Spending is attributed to
 * orders oldest first (`paidSpentNano` is all paid money ever consumed), so the newest money is
 * what stays refundable; an order's earlier refunds are no longer its own to spend or refund.
 */
export function refundableParts(
  orders: PaidOrder[],
  paidSpentNano: bigint,
  nowMs: number,
): RefundablePart[] {
  const windowStart = refundWindowStart(nowMs);
  const oldestFirst = [...orders].sort((a, b) => a.paidAtMs - b.paidAtMs);
  let spent = paidSpentNano;
  const parts: RefundablePart[] = [];

  for (const order of oldestFirst) {
    const available = order.amountNano - order.refundedNano;
    // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigint.
    const consumed = spent < available ? spent : available;
    spent -= consumed;
    const unconsumed = available - consumed;
    if (unconsumed > 0n && order.paidAtMs >= windowStart) {
      parts.push({ orderId: order.orderId, method: order.method, amountNano: unconsumed });
    }
  }
  return parts;
}

export function totalNano(parts: { amountNano: bigint }[]): bigint {
  return parts.reduce((sum, part) => sum + part.amountNano, 0n);
}
