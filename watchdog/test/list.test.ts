import { describe, expect, it } from 'vitest';
import { List } from '../src/list.js';

describe('List', () => {
  it('keeps values in the order they were pushed', () => {
    const list = new List<string>();
    list.push('a');
    list.push('b');
    list.push('c');
    expect(list.values()).toEqual(['a', 'b', 'c']);
    expect(list.size).toBe(3);
  });

  it('removes an entry from the front, the middle and the back', () => {
    const list = new List<number>();
    const entries = [1, 2, 3, 4, 5].map((n) => list.push(n));
    expect(list.remove(entries[2]!)).toBe(true);
    expect(list.values()).toEqual([1, 2, 4, 5]);
    expect(list.remove(entries[0]!)).toBe(true);
    expect(list.remove(entries[4]!)).toBe(true);
    expect(list.values()).toEqual([2, 4]);
    expect(list.size).toBe(2);
    // Pushing after removals at both ends links from the right tail.
    list.push(6);
    expect(list.values()).toEqual([2, 4, 6]);
  });

  it('removes an entry only once, and not from another list', () => {
    const list = new List<string>();
    const other = new List<string>();
    const entry = list.push('a');
    other.push('a');
    expect(other.remove(entry)).toBe(false);
    expect(list.remove(entry)).toBe(true);
    expect(list.remove(entry)).toBe(false);
    expect(list.size).toBe(0);
    expect(other.size).toBe(1);
  });

  it('shifts the oldest value until empty', () => {
    const list = new List<string>();
    list.push('a');
    const b = list.push('b');
    list.push('c');
    expect(list.shift()).toBe('a');
    expect(list.remove(b)).toBe(true);
    expect(list.shift()).toBe('c');
    expect(list.shift()).toBeUndefined();
    expect(list.size).toBe(0);
    expect(list.values()).toEqual([]);
  });

  it('gives a snapshot that stays whole while entries are removed', () => {
    const list = new List<number>();
    const entries = [1, 2, 3].map((n) => list.push(n));
    const seen: number[] = [];
    for (const value of list.values()) {
      seen.push(value);
      list.remove(entries[value - 1]!);
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(list.size).toBe(0);
  });
});
