/**
 * Names: stream ids, event types, categories, checkpoint names.
 */
import * as Effect from "effect/Effect"
import { InvalidInput } from "../../Errors.js"
import { maxNameLength } from "./limits.js"

// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f]/

export const invalid = (field: string, reason: string): InvalidInput => new InvalidInput({ field, reason })

/** Why `value` is not a name the store accepts, or `undefined` when it is. */
export const checkName = (field: string, value: unknown): InvalidInput | undefined => {
  if (typeof value !== "string" || value.length === 0) return invalid(field, "must be a non-empty string")
  if (value.length > maxNameLength) return invalid(field, `must be at most ${maxNameLength} characters`)
  if (controlCharacters.test(value)) return invalid(field, "must not contain control characters")
  if (!value.isWellFormed()) return invalid(field, "must be well-formed Unicode")
  return undefined
}

/** A name at `field`: a checkpoint's, a projection's. */
export const name = (field: string, value: unknown): Effect.Effect<string, InvalidInput> => {
  const error = checkName(field, value)
  return error ? Effect.fail(error) : Effect.succeed(value as string)
}

/** `effect`, run only once `value` is a valid name at `field`. */
export const withName =
  (field: string, value: unknown) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | InvalidInput, R> =>
    Effect.zipRight(name(field, value), effect)

export const streamId = (value: unknown): Effect.Effect<string, InvalidInput> => name("streamId", value)

export const names = (field: string, values: ReadonlyArray<string> | undefined) =>
  Effect.suspend(() => {
    if (values === undefined) return Effect.succeed(undefined)
    if (!Array.isArray(values) || values.length === 0) {
      return Effect.fail(invalid(field, "must be a non-empty array when given"))
    }
    for (const value of values) {
      const error = checkName(field, value)
      if (error) return Effect.fail(error)
    }
    return Effect.succeed(values as ReadonlyArray<string>)
  })
