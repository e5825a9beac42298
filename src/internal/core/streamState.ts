/**
 * What a stream's state means for the rules of the store.
 */
import * as Either from "effect/Either"
import { ConcurrencyError, StreamDeleted } from "../../Errors.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { StreamState } from "./driver.js"

/** The version an expected-version check sees: 0 for a stream with no events, deleted or tombstoned. */
export const liveVersion = (stream: StreamState | undefined): number =>
  stream === undefined || stream.deleted || stream.tombstoned ? 0 : stream.version

/**
 * The check of a soft delete, tombstone or archive: a tombstoned stream is
 * gone for good; otherwise the live version must satisfy `expected`.
 */
export const lifecycleCheck =
  (streamId: string, expected: ExpectedVersion.ExpectedVersion) =>
  (stream: StreamState | undefined): Either.Either<number, ConcurrencyError | StreamDeleted> => {
    if (stream?.tombstoned === true) return Either.left(new StreamDeleted({ streamId }))
    const actual = liveVersion(stream)
    return ExpectedVersion.isSatisfiedBy(expected, actual)
      ? Either.right(actual)
      : Either.left(new ConcurrencyError({ streamId, expected, actual }))
  }
