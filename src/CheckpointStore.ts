/**
 * Where subscribers and projections keep their place in the global log.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { InvalidInput, StoreError } from "./Errors.js"
import type { RecordedEvent } from "./RecordedEvent.js"

/**
 * The checkpoint was not where the caller last saw it: another runner of the
 * same projection moved it. The caller must stop; nothing of its transaction
 * was committed.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointConflict extends Schema.TaggedError<CheckpointConflict>()("CheckpointConflict", {
  name: Schema.String,
  expected: Schema.BigIntFromSelf,
  actual: Schema.BigIntFromSelf
}) {
  override get message(): string {
    return `Checkpoint "${this.name}" was expected at ${this.expected} but is at ${this.actual}: another runner moved it`
  }
}

/**
 * An event a projection could not apply and set aside.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParkedEvent {
  readonly projection: string
  readonly position: bigint
  readonly eventId: string
  readonly streamId: string
  readonly eventType: string
  readonly error: string
  readonly parkedAt: Date
}

/**
 * The event a projection stopped on (its failure policy said "stop"), as its
 * runner recorded it: where the checkpoint stood (`after`), the event, and
 * the error. It stays until the event is skipped or parked, or the projection
 * moves past it by itself (after a fix); until then any process can see why
 * the projection stopped.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailedEvent {
  readonly projection: string
  /** The checkpoint of the runner that stopped: the projection's name, or `name@generation`. */
  readonly checkpoint: string
  /** The checkpoint's position when it stopped. */
  readonly after: bigint
  readonly position: bigint
  readonly eventId: string
  readonly streamId: string
  readonly eventType: string
  readonly error: string
  readonly failedAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SaveOptions {
  /**
   * Compare and set: save only if the checkpoint is still at this position (0n
   * for "never saved"), else fail with `CheckpointConflict`.
   */
  readonly expected?: bigint | undefined
}

/**
 * Checkpoints of named subscribers, and the events their projections parked.
 * On the SQL backends everything here runs on the `SqlClient` in context, so a
 * save inside `transaction` (or the caller's own `withTransaction`) commits
 * with the caller's writes. Every checkpoint and projection name is checked
 * as a stream id is: an invalid one fails with `InvalidInput` before anything
 * is read or written.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointStore {
  /** The last position `name` processed, or none if it never saved one. */
  readonly load: (name: string) => Effect.Effect<Option.Option<bigint>, InvalidInput | StoreError>
  readonly save: (
    name: string,
    position: bigint,
    options?: SaveOptions
  ) => Effect.Effect<void, CheckpointConflict | InvalidInput | StoreError>
  /**
   * Inside a transaction: waits for and holds the checkpoint of `name` until
   * the transaction ends, and fails with `CheckpointConflict` unless it is at
   * `expected` (a missing checkpoint counts as 0). A batch that starts with it
   * cannot run its handlers on top of another runner's uncommitted batch.
   */
  readonly lock: (name: string, expected: bigint) => Effect.Effect<void, CheckpointConflict | InvalidInput | StoreError>
  /** Sets `event` aside for `name`, with the reason it could not be applied. */
  readonly park: (
    name: string,
    event: Pick<RecordedEvent, "position" | "eventId" | "streamId" | "eventType">,
    error: string
  ) => Effect.Effect<void, InvalidInput | StoreError>
  /** The events `name` parked, in position order. */
  readonly parked: (name: string) => Effect.Effect<ReadonlyArray<ParkedEvent>, InvalidInput | StoreError>
  /** Removes a parked event (after it has been dealt with). */
  readonly unpark: (name: string, position: bigint) => Effect.Effect<void, InvalidInput | StoreError>
  /** Records the event a projection stopped on, replacing an earlier record of it. */
  readonly recordFailure: (failure: Omit<FailedEvent, "failedAt">) => Effect.Effect<void, InvalidInput | StoreError>
  /** The event `projection` stopped on, if its runner recorded one. */
  readonly failure: (projection: string) => Effect.Effect<Option.Option<FailedEvent>, InvalidInput | StoreError>
  /**
   * Removes the record of the event `projection` stopped on (only if it is
   * the one at `position`, when given) and returns it; inside `transaction`,
   * a concurrent removal waits and then finds nothing.
   */
  readonly clearFailure: (
    projection: string,
    position?: bigint | undefined
  ) => Effect.Effect<Option.Option<FailedEvent>, InvalidInput | StoreError>
  /**
   * Runs `effect` so that the saves and parks inside it commit together with
   * it, or not at all (a SQL transaction on the SQL backends).
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
}

/**
 * The tag of the `CheckpointStore` service.
 *
 * @since 0.1.0
 * @category tags
 */
export const CheckpointStore: Context.Tag<CheckpointStore, CheckpointStore> = Context.GenericTag<CheckpointStore>(
  "effect-event-store/CheckpointStore"
)
