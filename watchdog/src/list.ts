/** A value's place in a {@link List}: what `push` returns and `remove` takes. */
export interface ListEntry<T> {
  readonly value: T;
}

interface Node<T> extends ListEntry<T> {
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
  list: List<T> | undefined;
}

/**
 * A doubly linked list for what the watchdog holds per request while it is in flight or
 * queued: O(1) append, removal from anywhere, and removal from the front.
 *
 * Why not a `Set`: a long-lived `Set` or `Map` that takes and drops a short-lived object per
 * request rehashes every few dozen requests, and each table it leaves behind sits dead in the
 * old generation until the next full GC, still pointing at the requests that were in flight
 * when it was replaced. Every scavenge keeps those alive and promotes them with everything they
 * reach. Under load that made each of the proxy's scavenges 3–4 ms instead of 0.5 and doubled
 * its p99 (docs/benchmarks.md). Here a removed entry lets go of its neighbours at once, so
 * nothing dead points at anything young.
 */
export class List<T> {
  #head: Node<T> | undefined;
  #tail: Node<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Appends `value`; keep the entry to remove it later. */
  push(value: T): ListEntry<T> {
    const node: Node<T> = { value, prev: this.#tail, next: undefined, list: this };
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#size += 1;
    return node;
  }

  /** Removes an entry; false if it was removed already. */
  remove(entry: ListEntry<T>): boolean {
    const node = entry as Node<T>;
    if (node.list !== this) return false;
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
    node.list = undefined;
    this.#size -= 1;
    return true;
  }

  /** Removes and returns the oldest value. */
  shift(): T | undefined {
    const head = this.#head;
    if (!head) return undefined;
    this.remove(head);
    return head.value;
  }

  /** The values in order, as an array: safe to walk while entries are removed. */
  values(): T[] {
    const out: T[] = [];
    for (let node = this.#head; node; node = node.next) out.push(node.value);
    return out;
  }
}
