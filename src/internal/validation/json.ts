/**
 * JSON as PostgreSQL's `jsonb` stores it and gives it back unchanged: the rule
 * for event data, metadata, stream metadata's `custom` and snapshot states.
 */
import * as Effect from "effect/Effect"
import { InvalidInput } from "../../Errors.js"
import { maxDepth } from "./limits.js"
import { invalid } from "./names.js"

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** Thrown out of a read of the caller's value (a getter or a proxy trap that throws), with where it happened. */
class Unreadable {
  constructor(readonly path: string, readonly cause: unknown) {}
  get reason(): string {
    return `${this.path} could not be read: ${describe(this.cause)}`
  }
}

/** Reads `read()`, turning whatever it throws into an `Unreadable` at `path`. */
const readAt = <A>(path: string, read: () => A): A => {
  try {
    return read()
  } catch (cause) {
    throw cause instanceof Unreadable ? cause : new Unreadable(path, cause)
  }
}

/**
 * Writes `value` as JSON text into `out`, or returns why it is not a JSON
 * value that PostgreSQL's `jsonb` stores and gives back unchanged. One pass
 * that reads every property once, so the text is exactly the value that was
 * checked, even when a getter would answer differently the next time.
 * Arrays are their elements and objects their own enumerable string-keyed
 * properties, as in JSON; `toJSON` is never called. `JSON.stringify` alone
 * would silently drop functions, turn `NaN` into `null` and `-0` into `0`,
 * call `toJSON`, and throw on bigints and cycles.
 */
const writeJson = (
  value: unknown,
  path: string,
  out: Array<string>,
  ancestors: Set<object>,
  depth: number
): string | undefined => {
  switch (typeof value) {
    case "string":
      if (value.includes("\u0000")) return `${path} contains a NUL character, which jsonb cannot store`
      if (!value.isWellFormed()) return `${path} is not well-formed Unicode (lone surrogate)`
      out.push(JSON.stringify(value))
      return undefined
    case "boolean":
      out.push(value ? "true" : "false")
      return undefined
    case "number":
      if (!Number.isFinite(value)) return `${path} is ${value}, which JSON cannot represent`
      // JSON has no negative zero: it would read back as 0.
      if (Object.is(value, -0)) return `${path} is -0, which JSON cannot represent (it would read back as 0)`
      out.push(String(value))
      return undefined
    case "object": {
      if (value === null) {
        out.push("null")
        return undefined
      }
      if (depth > maxDepth) return `${path} is nested deeper than ${maxDepth} levels`
      if (ancestors.has(value)) return `${path} is a circular reference`
      const isArray = readAt(path, () => Array.isArray(value))
      const proto: unknown = readAt(path, () => Object.getPrototypeOf(value))
      if (!isArray && proto !== Object.prototype && proto !== null) {
        const name = readAt(path, () => (value as { constructor?: { name?: unknown } }).constructor?.name)
        return `${path} is a ${typeof name === "string" ? name : "non-plain object"}; encode it to JSON first`
      }
      ancestors.add(value)
      // One try per level: a property that throws when read is reported at its own path.
      let at = path
      try {
        if (isArray) {
          // Only the elements, as JSON has them: other properties (a `toJSON`, say) are not read.
          const array = value as ReadonlyArray<unknown>
          const length = array.length
          out.push("[")
          for (let i = 0; i < length; i++) {
            at = `${path}[${i}]`
            const element: unknown = array[i]
            if (element === undefined) return `${at} is undefined`
            if (i > 0) out.push(",")
            const problem = writeJson(element, at, out, ancestors, depth + 1)
            if (problem) return problem
          }
          out.push("]")
        } else {
          const record = value as Record<string, unknown>
          const keys = Object.keys(record)
          out.push("{")
          let first = true
          for (const key of keys) {
            at = `${path}.${key}`
            const property: unknown = record[key]
            // An undefined property is left out, as JSON.stringify does: optional fields are common.
            if (property === undefined) continue
            if (key.includes("\u0000") || !key.isWellFormed()) return `${path} has a key that jsonb cannot store`
            if (!first) out.push(",")
            first = false
            out.push(JSON.stringify(key), ":")
            const problem = writeJson(property, at, out, ancestors, depth + 1)
            if (problem) return problem
          }
          out.push("}")
        }
        return undefined
      } catch (cause) {
        throw cause instanceof Unreadable ? cause : new Unreadable(at, cause)
      } finally {
        ancestors.delete(value)
      }
    }
    case "undefined":
      return `${path} is undefined`
    default:
      return `${path} is a ${typeof value}, which JSON cannot represent`
  }
}

export const toJson = (field: string, value: unknown): InvalidInput | string => {
  const out: Array<string> = []
  try {
    const problem = writeJson(value, field, out, new Set(), 0)
    return problem ? invalid(field, problem) : out.join("")
  } catch (cause) {
    if (cause instanceof Unreadable) return invalid(field, cause.reason)
    throw cause
  }
}

/**
 * Runs `check`, which reads a value the caller handed in: a getter or a proxy
 * trap that throws on the way is bad input at `field`, not a defect.
 */
export const guarded = <A>(field: string, check: () => A | InvalidInput): A | InvalidInput => {
  try {
    return check()
  } catch (cause) {
    return invalid(field, cause instanceof Unreadable ? cause.reason : `${field} could not be read: ${describe(cause)}`)
  }
}

/**
 * `value` as JSON text, if it is a JSON value that PostgreSQL's `jsonb` stores
 * and gives back unchanged: the rule for event data, metadata, stream metadata's
 * `custom` and snapshot states. Every property is read once; a getter or a
 * proxy that throws is an `InvalidInput`.
 */
export const json = (field: string, value: unknown): Effect.Effect<string, InvalidInput> =>
  Effect.suspend(() => {
    const result = toJson(field, value)
    return typeof result === "string" ? Effect.succeed(result) : Effect.fail(result)
  })

/**
 * Runs `check` on input the caller handed in, so that a getter or a proxy trap
 * that throws while it is read becomes an `InvalidInput` at `field`.
 */
export const readInput = <A>(
  field: string,
  check: () => Effect.Effect<A, InvalidInput>
): Effect.Effect<A, InvalidInput> =>
  Effect.suspend(() => {
    const result = guarded(field, check)
    return result instanceof InvalidInput ? Effect.fail(result) : result
  })
