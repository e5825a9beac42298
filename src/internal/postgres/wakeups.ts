/**
 * Tells live subscribers that the log may have grown, so that they re-read
 * instead of polling the database each on its own.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import { SqlState, sqlStateOf } from "./sqlErrors.js"
import * as Standby from "./standby.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Wakeups {
  /**
   * Registers a subscriber for the scope and returns the effect that waits for
   * its next wake-up: a signal sent after the registration, or `idle` passing.
   */
  readonly register: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /**
   * Runs an append of this process, counted as running until it ends, and
   * wakes the subscribers when it ends, however it ends.
   */
  readonly track: <A, E, R>(append: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Whether an append of this process is running (`track`). */
  readonly appending: Effect.Effect<boolean>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WakeupOptions {
  /**
   * How often one fiber per store reads the position sequence while anyone
   * subscribes, to notice appends of other processes (default 10 ms). Appends
   * of this process wake subscribers at once.
   */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** The longest a subscriber sleeps without any signal (default 1 second). */
  readonly idle?: Duration.DurationInput | undefined
}

/**
 * One poller per store watches `last_value` of the position sequence, a read
 * of one row that changes whenever any session anywhere draws a position.
 * It runs only while there are subscribers. Polling rather than `pg_notify`:
 * a notifying transaction takes a lock that serialises the commits of all
 * notifying transactions in the cluster, which would cap append throughput.
 *
 * On a hot standby `last_value` runs ahead of the positions handed out, so the
 * poller reads nothing there: it logs the refusal once and wakes the
 * subscribers, whose next horizon read fails with it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  schema: string,
  options?: WakeupOptions
): Effect.Effect<Wakeups, SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pollInterval = Duration.decode(options?.pollInterval ?? Duration.millis(10))
    const idle = Duration.decode(options?.idle ?? Duration.seconds(1))
    const signals = yield* PubSub.sliding<void>(1)
    const subscribers = yield* Ref.make(0)
    const sequence = sql(`${schema}.events_position_seq`)
    const readHead = sql<{ readonly last_value: string; readonly standby: boolean }>`
      SELECT last_value::text AS last_value, pg_is_in_recovery() AS standby FROM ${sequence}`.pipe(
      Effect.flatMap(([row]) =>
        row?.standby === true
          ? Effect.fail(Standby.refusal("follow the global log"))
          : Effect.succeed(row?.last_value ?? "")
      )
    )
    const wake = PubSub.publish(signals, undefined)

    // `seen` is the last head read, or undefined after a failed read: a failure
    // is logged once, not at every poll, and subscribers are woken on recovery.
    const poll = (seen: string | undefined) =>
      Effect.gen(function*() {
        yield* Effect.sleep(pollInterval)
        if ((yield* Ref.get(subscribers)) === 0) return seen
        return yield* readHead.pipe(
          Effect.tap((head) => head !== seen ? wake : Effect.void),
          Effect.catchTags({
            // A cancelled read is how a closing store stops it.
            SqlError: (error) =>
              seen === undefined || sqlStateOf(error) === SqlState.queryCanceled
                ? Effect.succeed(undefined)
                : Effect.as(Effect.logWarning("Subscription poll failed; retrying", error), undefined),
            // Woken, the subscribers fail at their next horizon read rather than
            // sleep out their idle time.
            StoreError: (error) =>
              seen === undefined
                ? Effect.succeed(undefined)
                : Effect.as(Effect.zipRight(Effect.logWarning(error.message), wake), undefined)
          })
        )
      })
    yield* Effect.forkScoped(Effect.iterate("" as string | undefined, { while: () => true, body: poll }))

    const register = Effect.gen(function*() {
      yield* Effect.acquireRelease(Ref.update(subscribers, (n) => n + 1), () => Ref.update(subscribers, (n) => n - 1))
      const queue = yield* PubSub.subscribe(signals)
      return Queue.take(queue).pipe(Effect.timeoutOption(idle), Effect.asVoid)
    })

    // A subscriber at a hole waits for a wake-up while one of these runs: the
    // wake-up after the count drops is what ends that wait.
    const running = yield* Ref.make(0)
    const track = <A, E, R>(append: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Ref.update(running, (n) => n + 1),
        () => append,
        () => Effect.zipRight(Ref.update(running, (n) => n - 1), wake)
      )

    return {
      register,
      track,
      appending: Effect.map(Ref.get(running), (n) => n > 0)
    }
  })
