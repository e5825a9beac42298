/**
 * Deep equality for values that went through a store and back: plain objects
 * and arrays by their contents (a property set to `undefined` counts as
 * absent, as it does once stored as JSON), dates by their time, and anything
 * that implements `Equal` (Option, Data, Schema classes) by `Equal.equals`.
 *
 * @since 0.1.0
 * @internal
 */
import * as Equal from "effect/Equal"
import * as Utils from "effect/Utils"

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const definedKeys = (value: Record<string, unknown>) => Object.keys(value).filter((key) => value[key] !== undefined)

/**
 * @since 0.1.0
 * @internal
 */
export const deepEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEquals(x, b[i]))
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = definedKeys(a)
    return keys.length === definedKeys(b).length && keys.every((key) => deepEquals(a[key], b[key]))
  }
  return Equal.isEqual(a) && Equal.isEqual(b) && Utils.structuralRegion(() => Equal.equals(a, b), deepEquals)
}
