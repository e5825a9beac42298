/**
 * The options of reads, subscriptions, listings and scavenges, with their
 * defaults resolved and checked.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { InvalidInput } from "../../Errors.js"
import type {
  ListStreamsOptions,
  ReadAllOptions,
  ReadStreamOptions,
  ScavengeOptions,
  SubscribeOptions
} from "../../EventStore.js"
import { eventFilter } from "./filter.js"
import { defaultBatchSize, defaultScavengeBatchSize, maxBatchSize, maxPosition } from "./limits.js"
import { invalid, names, streamId } from "./names.js"

export const scavengeOptions = (options: ScavengeOptions | undefined) =>
  Effect.all({
    batchSize: positiveInt("batchSize", options?.batchSize, defaultScavengeBatchSize, maxBatchSize)
  })

const includeArchived = (value: boolean | undefined) =>
  value === undefined || typeof value === "boolean"
    ? Effect.succeed(value ?? false)
    : Effect.fail(invalid("includeArchived", "must be true or false"))

export const positiveInt = (
  field: string,
  value: number | undefined,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER
) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(value) && value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, `must be an integer from 1 to ${max}`))

export const nonNegativeInt = (field: string, value: number) =>
  Number.isSafeInteger(value) && value >= 0
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, "must be a non-negative integer"))

export const position = (field: string, value: unknown): Effect.Effect<bigint, InvalidInput> =>
  typeof value === "bigint" && value >= 0n && value <= maxPosition
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, `must be a bigint from 0 to ${maxPosition}`))

/**
 * How `subscribe` retries a failed read unless told otherwise: forever,
 * backing off exponentially from 100 ms to at most 5 seconds, with jitter so
 * that the subscribers of a restarted server do not all come back at once.
 */
export const defaultSubscribeRetry: Schedule.Schedule<unknown> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(5))),
  Schedule.jittered
)

/**
 * Read options with their defaults resolved and checked.
 */
const direction = (value: "forward" | "backward" | undefined) =>
  value === undefined || value === "forward" || value === "backward"
    ? Effect.succeed(value ?? "forward")
    : Effect.fail(invalid("direction", `must be "forward" or "backward"`))

export const readStreamOptions = (options: ReadStreamOptions | undefined) =>
  Effect.all({
    direction: direction(options?.direction),
    from: options?.from === undefined ? Effect.succeed(undefined) : nonNegativeInt("from", options.from),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize)
  })

export const readAllOptions = (options: ReadAllOptions | undefined) =>
  Effect.all({
    direction: direction(options?.direction),
    from: options?.from === undefined ? Effect.succeed(undefined) : position("from", options.from),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize),
    filter: eventFilter(options?.filter),
    includeArchived: includeArchived(options?.includeArchived)
  })

export const subscribeOptions = (options: SubscribeOptions | undefined) =>
  Effect.all({
    from: options?.from === undefined
      ? Effect.succeed<bigint | "end">(0n)
      : options.from === "end"
      ? Effect.succeed<bigint | "end">("end")
      : position("from", options.from),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize),
    filter: eventFilter(options?.filter),
    includeArchived: includeArchived(options?.includeArchived),
    retry: Effect.succeed(options?.retry ?? defaultSubscribeRetry)
  })

export const listStreamsOptions = (options: ListStreamsOptions | undefined) =>
  Effect.all({
    category: options?.category === undefined
      ? Effect.succeed(undefined)
      : Effect.as(names("category", [options.category]), options.category),
    after: options?.after === undefined ? Effect.succeed(undefined) : streamId(options.after),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize)
  })
