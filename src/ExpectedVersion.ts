/**
 * What a writer believes about a stream before it appends: the optimistic
 * concurrency check of an append.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * - `"any"`: no check.
 * - `"no_stream"`: the stream must not exist yet (the same as version `0`).
 * - `"stream_exists"`: the stream must have at least one event.
 * - a number `n`: the stream's current version must be exactly `n`.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = "any" | "no_stream" | "stream_exists" | number

/**
 * @since 0.1.0
 * @category schemas
 */
export const ExpectedVersion: Schema.Schema<ExpectedVersion> = Schema.Union(
  Schema.Literal("any", "no_stream", "stream_exists"),
  Schema.NonNegativeInt
)

/**
 * @since 0.1.0
 * @category constructors
 */
export const any: ExpectedVersion = "any"

/**
 * @since 0.1.0
 * @category constructors
 */
export const noStream: ExpectedVersion = "no_stream"

/**
 * @since 0.1.0
 * @category constructors
 */
export const streamExists: ExpectedVersion = "stream_exists"

/**
 * @since 0.1.0
 * @category constructors
 */
export const exact = (version: number): ExpectedVersion => version

/**
 * Does a stream whose current version is `actual` (0 when it does not exist)
 * satisfy `expected`? Every backend decides with this one function.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSatisfiedBy = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected) {
    case "any":
      return true
    case "no_stream":
      return actual === 0
    case "stream_exists":
      return actual > 0
    default:
      return actual === expected
  }
}

/**
 * @since 0.1.0
 * @category formatting
 */
export const format = (expected: ExpectedVersion): string =>
  typeof expected === "number" ? `version ${expected}` : expected.replace("_", " ")
