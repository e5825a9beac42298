/**
 * What the memory backend does to look exactly like PostgreSQL: stream ids in
 * the code point order of `COLLATE "C"`, and JSON kept as `jsonb` keeps it.
 */
import type * as Order from "effect/Order"

// JS `<` compares UTF-16 code units, which puts U+10000 and above (surrogate
// pairs, D800–DFFF) before U+E000–U+FFFF. PostgreSQL's `COLLATE "C"` compares
// UTF-8 bytes, which is code point order. Moving the surrogates above
// E000–FFFF at the first differing unit gives code point order.
const codeUnitRank = (unit: number): number => unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit

/** Code point order, as `COLLATE "C"` sorts stream ids. */
export const byCodePoint: Order.Order<string> = (a, b) => {
  if (a === b) return 0
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codeUnitRank(x) < codeUnitRank(y) ? -1 : 1
  }
  return a.length < b.length ? -1 : 1
}

// jsonb orders an object's keys by their length in UTF-8 bytes, then bytewise.
const jsonbKeyOrder = (a: string, b: string): number => Buffer.byteLength(a) - Buffer.byteLength(b) || byCodePoint(a, b)

const jsonbText = (value: unknown): string => {
  if (Array.isArray(value)) return "[" + value.map(jsonbText).join(",") + "]"
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => jsonbKeyOrder(a, b))
    return "{" + entries.map(([key, property]) => JSON.stringify(key) + ":" + jsonbText(property)).join(",") + "}"
  }
  return JSON.stringify(value)
}

/**
 * JSON text as `jsonb` would give it back: keys in jsonb's order, so that
 * `JSON.parse` of it enumerates keys as the PostgreSQL backend's rows do.
 */
export const asJsonb = (json: string): string => jsonbText(JSON.parse(json))

/** A value as `jsonb` would give it back. */
export const jsonbOf = (value: unknown): string => jsonbText(value)
