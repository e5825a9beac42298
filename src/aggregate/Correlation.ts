/**
 * Correlation and causation ids, carried from whatever started a piece of work
 * (an HTTP request, a message) into the metadata of the events it produces.
 * Set them once around a handler with `withCorrelation`; command handlers
 * read them from the fiber, and ids given to a command directly take
 * precedence.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Correlation } from "effect-event-store"
 *
 * // Around a handler: `accounts.handle("Account-1", deposit).pipe(Correlation.withCorrelation(…))`
 * const program = Correlation.current.pipe(
 *   Correlation.withCorrelation({ correlationId: "request-7", causationId: "message-3" })
 * )
 *
 * assert.deepStrictEqual(Effect.runSync(program), { correlationId: "request-7", causationId: "message-3" })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import type { EventMetadata } from "../EventData.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Correlation {
  /** The id shared by everything that one original request caused. */
  readonly correlationId?: string | undefined
  /** The id of the message (command, event) that directly caused these events. */
  readonly causationId?: string | undefined
}

/**
 * The fiber's correlation (empty by default), inherited by child fibers.
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const currentCorrelation: FiberRef.FiberRef<Correlation> = globalValue(
  Symbol.for("effect-event-store/Correlation/currentCorrelation"),
  () => FiberRef.unsafeMake<Correlation>({})
)

/**
 * The fiber's correlation.
 *
 * @since 0.1.0
 * @category getters
 */
export const current: Effect.Effect<Correlation> = FiberRef.get(currentCorrelation)

/**
 * `b`'s ids where it has them, `a`'s otherwise.
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (a: Correlation, b: Correlation): Correlation => ({
  ...defined(a),
  ...defined(b)
})

const defined = (correlation: Correlation): Correlation => ({
  ...(correlation.correlationId === undefined ? {} : { correlationId: correlation.correlationId }),
  ...(correlation.causationId === undefined ? {} : { causationId: correlation.causationId })
})

/**
 * Runs `self` with these ids as the fiber's correlation (ids left out keep
 * their outer value).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withCorrelation: {
  (correlation: Correlation): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, correlation: Correlation): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, correlation: Correlation): Effect.Effect<A, E, R> =>
    Effect.locallyWith(self, currentCorrelation, (outer) => merge(outer, correlation))
)

/**
 * The correlation as event metadata (only the ids that are set).
 *
 * @since 0.1.0
 * @category conversions
 */
export const toMetadata = (correlation: Correlation): EventMetadata => ({ ...defined(correlation) })
