/** Runs `fn` over `items` with at most `limit` calls in flight; the results keep the order of `items`. */
export async function mapLimit<T, U>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<U>): Promise<U[]> {
  if (!Array.isArray(items)) throw new TypeError(`mapLimit: items must be an array, got ${typeof items}`);
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapLimit: limit must be an integer >= 1, got ${String(limit)}`);
  if (typeof fn !== 'function') throw new TypeError(`mapLimit: fn must be a function, got ${typeof fn}`);
  const out = new Array<U>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
