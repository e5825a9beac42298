/**
 * `setStreamMetadata`'s input.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { InvalidInput } from "../../Errors.js"
import type { SetStreamMetadataOptions, StreamMetadataInput } from "../../EventStore.js"
import * as StreamId from "../../StreamId.js"
import { readInput, toJson } from "./json.js"
import type { Limits } from "./limits.js"
import { checkName, invalid } from "./names.js"

/**
 * Stream metadata that passed every check, ready to store. Settings that are
 * not set are `null`; `custom` is JSON text.
 */
export interface PreparedMetadata {
  readonly streamId: string
  readonly category: string
  readonly expected: "any" | number
  readonly maxCount: number | null
  readonly maxAgeMillis: number | null
  readonly truncateBefore: number | null
  readonly custom: string
}

const metadataKeys = new Set(["maxCount", "maxAge", "truncateBefore", "custom"])

/**
 * Checks a `setStreamMetadata` call: positive integer `maxCount`, a positive
 * whole number of milliseconds for `maxAge`, a non-negative integer
 * `truncateBefore`, a JSON object `custom` within `maxEventBytes`, and no other keys.
 */
export const prepareMetadata = (
  streamIdValue: string,
  metadata: StreamMetadataInput,
  options: SetStreamMetadataOptions | undefined,
  limits: Limits
): Effect.Effect<PreparedMetadata, InvalidInput> =>
  readInput("metadata", () => {
    const streamError = checkName("streamId", streamIdValue)
    if (streamError) return Effect.fail(streamError)
    const expected = options?.expectedMetadataVersion ?? "any"
    if (expected !== "any" && !(typeof expected === "number" && Number.isSafeInteger(expected) && expected >= 0)) {
      return Effect.fail(invalid("expectedMetadataVersion", `must be "any" or a non-negative integer`))
    }
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      return Effect.fail(invalid("metadata", "must be an object"))
    }
    for (const key of Object.keys(metadata)) {
      if (!metadataKeys.has(key)) {
        return Effect.fail(
          invalid(`metadata.${key}`, "is not a setting: use maxCount, maxAge, truncateBefore or custom")
        )
      }
    }
    const { custom: customValue, maxAge, maxCount, truncateBefore } = metadata
    if (maxCount !== undefined && !(Number.isSafeInteger(maxCount) && maxCount >= 1)) {
      return Effect.fail(invalid("metadata.maxCount", "must be a positive integer"))
    }
    if (truncateBefore !== undefined && !(Number.isSafeInteger(truncateBefore) && truncateBefore >= 0)) {
      return Effect.fail(invalid("metadata.truncateBefore", "must be a non-negative integer"))
    }
    let maxAgeMillis: number | null = null
    if (typeof maxAge === "number" || typeof maxAge === "bigint") {
      return Effect.fail(
        invalid(
          "metadata.maxAge",
          `must name its unit, e.g. "${maxAge} seconds" or Duration.seconds(${maxAge}): a bare number is milliseconds ` +
            "in Effect but seconds in KurrentDB"
        )
      )
    }
    if (maxAge !== undefined) {
      const millis = Option.map(Duration.decodeUnknown(maxAge), Duration.toMillis)
      if (Option.isNone(millis) || !Number.isSafeInteger(millis.value) || millis.value < 1) {
        return Effect.fail(invalid("metadata.maxAge", "must be a positive, finite duration in whole milliseconds"))
      }
      maxAgeMillis = millis.value
    }
    const customObject: unknown = customValue === undefined ? {} : customValue
    if (typeof customObject !== "object" || customObject === null || Array.isArray(customObject)) {
      return Effect.fail(invalid("metadata.custom", "must be a JSON object"))
    }
    const custom = toJson("metadata.custom", customObject)
    if (typeof custom !== "string") return Effect.fail(custom)
    const bytes = Buffer.byteLength(custom)
    if (bytes > limits.maxEventBytes) {
      return Effect.fail(invalid("metadata.custom", `is ${bytes} bytes, over the limit of ${limits.maxEventBytes}`))
    }
    return Effect.succeed({
      streamId: streamIdValue,
      category: StreamId.category(streamIdValue),
      expected,
      maxCount: maxCount ?? null,
      maxAgeMillis,
      truncateBefore: truncateBefore ?? null,
      custom
    })
  })
