/**
 * Live subscriptions: catching up and following are one loop. Read up to the
 * settled horizon in pages; past it, take the run of committed positions right
 * above the cursor (settled without waiting), fall back to the settled horizon
 * at a hole, and wait for a wake-up once nothing more has been drawn. No
 * switch-over, so nothing is dropped or repeated at the seam. The cursor and
 * the horizon move only once a read has succeeded, so a failed step is retried
 * as it is, from where the subscription stands. Why no shortcut here can skip
 * an event: docs/global-order.md, "Following the log".
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { InvalidInput, StoreError } from "../../Errors.js"
import type { SubscribeOptions, SubscriptionItem } from "../../EventStore.js"
import type { RecordedEvent } from "../../RecordedEvent.js"
import * as Validation from "../validation/index.js"
import type { EventStoreDriver } from "./driver.js"

/**
 * How long a hole right above the cursor is waited out with wake-ups, while
 * appends of this process run, before the settled horizon settles it: an
 * append of this process wakes its subscribers when it ends, so a hole it
 * leaves usually closes sooner.
 */
const holePatienceMillis = 5

/**
 * The loop, for both forms: after every read, `emit` gets what the read
 * delivered and the cursor, the first position not yet looked at.
 */
const follow = <A>(
  driver: EventStoreDriver,
  options: SubscribeOptions | undefined,
  makeEmit: (
    from: bigint | "end"
  ) => (events: Chunk.Chunk<RecordedEvent>, cursor: bigint | undefined) => Chunk.Chunk<A>
): Stream.Stream<A, InvalidInput | StoreError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const { batchSize, filter, from, includeArchived, retry } = yield* Validation.subscribeOptions(options)
    const emit = makeEmit(from)
    // Registered before the first read, so that no append falls between the two.
    const nextWakeup = yield* driver.wakeups
    // The end is where the log stands when the subscription starts; if the
    // database cannot tell then, wherever it stands at the first read that works.
    const first = yield* Effect.option(driver.settledHorizon)
    let horizon = Option.getOrElse(first, () => -1n)
    let cursor: bigint | undefined = from !== "end" ? from : Option.isSome(first) ? first.value + 1n : undefined
    // What the next look waits for first: a wake-up once the last look
    // delivered everything drawn; at a hole, a wake-up or the rest of the
    // patience, whichever comes first (the append in flight there usually
    // commits, and wakes us, within it).
    let wait: "none" | "wakeup" | "hole" = "none"
    let holeAt = -1n
    let holeSince = 0
    const step = Effect.gen(function*() {
      if (cursor === undefined) {
        horizon = yield* driver.settledHorizon
        cursor = horizon + 1n
      }
      if (cursor > horizon) {
        if (wait === "wakeup") yield* nextWakeup
        if (wait === "hole") {
          const left = holeSince + holePatienceMillis - (yield* Clock.currentTimeMillis)
          if (left > 0) yield* Effect.timeoutOption(nextWakeup, left)
        }
        wait = "none"
        // The fast path: the committed run right above the cursor is settled
        // as it stands (every position below the cursor already is), so it is
        // delivered without waiting for appends in flight elsewhere.
        const run = yield* driver.readLogRun({ from: cursor, filter, includeArchived, limit: batchSize })
        const now = yield* Clock.currentTimeMillis
        if (run.settled >= cursor) {
          // A run as long as the look could see goes on: look again at once.
          const full = run.settled - cursor + 1n >= BigInt(batchSize)
          horizon = run.settled
          cursor = run.settled + 1n
          if (run.settled >= run.drawn) wait = "wakeup"
          else if (!full && run.appending) [wait, holeAt, holeSince] = ["hole", cursor, now]
          return Chunk.unsafeFromArray(run.events)
        }
        if (run.drawn < cursor) {
          // Nothing was drawn above the cursor: any append from here on wakes us.
          wait = "wakeup"
          return Chunk.empty<RecordedEvent>()
        }
        // A hole at the cursor: an append in flight, or one that will never
        // commit. While an append of this process runs (its end wakes us),
        // wait for it a little; otherwise, or past that, only the settled
        // horizon can tell which, and it waits for the append's end.
        if (holeAt !== cursor) [holeAt, holeSince] = [cursor, now]
        if (run.appending && now - holeSince < holePatienceMillis) {
          wait = "hole"
          return Chunk.empty<RecordedEvent>()
        }
        horizon = yield* driver.settledHorizon
        if (cursor > horizon) {
          wait = "wakeup"
          return Chunk.empty<RecordedEvent>()
        }
      }
      const page = yield* driver.readLogPage({ from: cursor, to: horizon, filter, includeArchived, limit: batchSize })
      const last = page[page.length - 1]
      // A short page means nothing else that matches is at or below the horizon.
      cursor = page.length < batchSize || last === undefined ? horizon + 1n : last.position + 1n
      return Chunk.unsafeFromArray(page)
    })
    const retrying = retry.pipe(
      Schedule.intersect(Schedule.identity<StoreError>()),
      Schedule.onDecision(([, error], decision) =>
        decision._tag === "Continue"
          ? Effect.logWarning(`Subscription read failed at position ${cursor ?? "end"}; retrying: ${error.message}`)
          : Effect.void
      )
    )
    return Stream.repeatEffectChunk(
      Effect.map(
        Effect.retry(step, { schedule: retrying, while: driver.isTransient }),
        (events) => emit(events, cursor)
      )
    )
  }))

export const subscribe =
  (driver: EventStoreDriver) => (options?: SubscribeOptions): Stream.Stream<RecordedEvent, InvalidInput | StoreError> =>
    follow(driver, options, () => (events) => events).pipe(Stream.withSpan("EventStore.subscribe"))

const event = (recorded: RecordedEvent): SubscriptionItem => ({ _tag: "Event", event: recorded })
const checkpoint = (position: bigint): SubscriptionItem => ({ _tag: "Checkpoint", position })

export const subscribeWithCheckpoints =
  (driver: EventStoreDriver) =>
  (options?: SubscribeOptions): Stream.Stream<SubscriptionItem, InvalidInput | StoreError> =>
    follow(driver, options, (from) => {
      // The highest position already told, by an event or a checkpoint.
      let told = from === "end" ? -1n : from - 1n
      return (events, cursor) => {
        const items = Chunk.map(events, event)
        const last = Chunk.last(events)
        if (Option.isSome(last) && last.value.position > told) told = last.value.position
        if (cursor === undefined || cursor - 1n <= told) return items
        told = cursor - 1n
        return Chunk.append(items, checkpoint(told))
      }
    }).pipe(Stream.withSpan("EventStore.subscribeWithCheckpoints"))
