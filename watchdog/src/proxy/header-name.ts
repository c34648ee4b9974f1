/**
 * True when header name `name` is `lower` (given in lower case), compared case-insensitively
 * without making a lower-case copy: the proxy checks a few names on every header of every
 * request and response, and `toLowerCase` there was an allocation each, plus hashing the new
 * string for every Set lookup.
 */
export function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const got = name.charCodeAt(i);
    // Only letters have a second case; every other character must match exactly.
    if (got !== want && !(want >= 97 && want <= 122 && got === want - 32)) return false;
  }
  return true;
}
