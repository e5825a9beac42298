/**
 * The typed failures of the store. A driver error becomes one of these once,
 * at the backend boundary; callers never see a raw SQL error.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * The stream was not at the expected version. Nothing of the append was stored.
 *
 * `actual` is the stream's version when the conflict was seen (0: no stream). It
 * is absent only when PostgreSQL itself detected the conflict as a
 * serialization failure inside a REPEATABLE READ or SERIALIZABLE transaction,
 * where the store can no longer read the stream.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyError extends Schema.TaggedError<ConcurrencyError>()("ConcurrencyError", {
  streamId: Schema.String,
  expected: ExpectedVersion.ExpectedVersion,
  actual: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const actual = this.actual === undefined
      ? "it was changed concurrently"
      : this.actual === 0
      ? "it does not exist"
      : `it is at version ${this.actual}`
    return `Stream "${this.streamId}" was expected at ${ExpectedVersion.format(this.expected)}, but ${actual}`
  }
}

/**
 * An event id that the append carries is already stored somewhere else: in
 * another stream, at another version, or as part of a different append. A retry
 * of the very same append at the same place is not an error (it succeeds and
 * stores nothing).
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateEventId extends Schema.TaggedError<DuplicateEventId>()("DuplicateEventId", {
  streamId: Schema.String,
  eventId: Schema.String,
  existingStreamId: Schema.optional(Schema.String),
  existingVersion: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const where = this.existingStreamId === undefined
      ? "already stored"
      : `already stored in stream "${this.existingStreamId}" at version ${this.existingVersion}`
    return `Event ${this.eventId} appended to "${this.streamId}" is ${where}`
  }
}

/**
 * The stream has no events.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>()("StreamNotFound", {
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream "${this.streamId}" was not found`
  }
}

/**
 * The stream was tombstoned (hard-deleted): it can never be read, written,
 * recreated or given metadata again. Its events stay in the global log until
 * `scavenge` removes them.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamDeleted extends Schema.TaggedError<StreamDeleted>()("StreamDeleted", {
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream "${this.streamId}" is tombstoned: it can never be read or written again`
  }
}

/**
 * The stream's metadata was not at the expected metadata version: someone else
 * set it (or deleted the stream, which sets `truncateBefore`) since it was
 * read. Nothing was written. A separate error from `ConcurrencyError`, so that
 * a command handler's retry of a conflicting append never catches it.
 *
 * @since 0.1.0
 * @category errors
 */
export class MetadataConcurrencyError extends Schema.TaggedError<MetadataConcurrencyError>()(
  "MetadataConcurrencyError",
  {
    streamId: Schema.String,
    expected: Schema.Union(Schema.Literal("any"), Schema.NonNegativeInt),
    actual: Schema.Number
  }
) {
  override get message(): string {
    return `The metadata of stream "${this.streamId}" was expected at metadata version ${this.expected}, ` +
      `but it is at ${this.actual}`
  }
}

/**
 * The caller passed something the store refuses. Raised before anything touches
 * the database, so the store is unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid ${this.field}: ${this.reason}`
  }
}

/**
 * The database failed in a way the caller cannot fix by changing the input:
 * a lost connection, a server restart, a timeout, a deadlock. The message says
 * what failed, then the driver's message and SQLSTATE
 * (`Could not append to "Order-1": terminating connection due to administrator
 * command (SQLSTATE 57P01)`); `cause` is the underlying error (usually an
 * `SqlError`).
 *
 * `sqlState` is the server's SQLSTATE when the server answered (absent when
 * the connection was lost or never made). `outcomeUnknown` is true when the
 * failed operation wrote and may nevertheless have committed: the connection
 * was lost at or after the moment its commit was sent. Without it, a failed
 * write took no effect. What to do then, operation by operation, is in
 * docs/failures.md (an append, for one, is safe to retry with the same event ids).
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  message: Schema.String,
  sqlState: Schema.optional(Schema.String),
  outcomeUnknown: Schema.optional(Schema.Boolean),
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * A stored event could not be turned into its current shape: its type is not
 * in the registry (under the `"fail"` policy), it was written with a schema
 * version newer than the registry knows, or its data does not decode (at its
 * stored version, in an upcaster, or as the current version). Names the event
 * so that it can be found and repaired; `issue` is the parse issue as text and
 * `cause` the underlying `ParseError` (or whatever an upcaster threw).
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamId: Schema.String,
  streamVersion: Schema.Number,
  position: Schema.BigIntFromSelf,
  eventType: Schema.String,
  schemaVersion: Schema.Number,
  reason: Schema.Literal("UnknownEventType", "UnknownSchemaVersion", "InvalidData"),
  issue: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Could not decode event "${this.eventType}" (schema version ${this.schemaVersion}) at "${this.streamId}" ` +
      `version ${this.streamVersion}, position ${this.position}: ${this.issue}`
  }
}
