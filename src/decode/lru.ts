/**
 * A bounded least-recently-used cache on a Map (whose iteration order is insertion order): a hit
 * re-inserts the key at the end, and an insert past the bound evicts the first (oldest) key. Chosen
 * over "clear when full" because the caches here (cgroup paths) are re-filled by an expensive walk.
 */
export class LruCache<K, V> {
  readonly #map = new Map<K, V>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
  }
}
