/**
 * What an append that wrote nothing was: a retry of an append already stored
 * (success), a clash of event ids, or a version conflict. Every backend's
 * rejections go through this one function, so idempotency means the same
 * thing everywhere.
 */
import * as Effect from "effect/Effect"
import { ConcurrencyError, DuplicateEventId } from "../../Errors.js"
import type { AppendResult } from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type * as Validation from "../validation/index.js"
import type { StoredEvent } from "./driver.js"

/**
 * Decides what a rejected append was, from the stream's version and the rows
 * that already carry the append's event ids.
 */
export const classify = (
  append: Validation.PreparedAppend,
  actual: number,
  stored: ReadonlyArray<StoredEvent>
): Effect.Effect<AppendResult, ConcurrencyError | DuplicateEventId> => {
  const byId = new Map(stored.map((row) => [row.eventId, row]))
  const first = byId.get(append.events[0].eventId)
  if (stored.length === 0) {
    return Effect.fail(new ConcurrencyError({ streamId: append.streamId, expected: append.expected, actual }))
  }
  // A retry: the same ids, in the same order, stored at consecutive versions of
  // this stream, right after the version the caller expected (0 when that
  // append re-created a soft-deleted stream: it found no stream).
  if (first !== undefined && first.streamId === append.streamId) {
    const before = first.streamVersion - 1
    const rows = append.events.map((event) => byId.get(event.eventId))
    const isSameAppend = rows.every((row, i) =>
      row !== undefined && row.streamId === append.streamId && row.streamVersion === before + 1 + i
    )
    if (isSameAppend && ExpectedVersion.isSatisfiedBy(append.expected, first.recreated === true ? 0 : before)) {
      return Effect.succeed({
        streamVersion: before + append.events.length,
        positions: rows.map((row) => row?.position ?? 0n)
      })
    }
  }
  if (!ExpectedVersion.isSatisfiedBy(append.expected, actual)) {
    return Effect.fail(new ConcurrencyError({ streamId: append.streamId, expected: append.expected, actual }))
  }
  const clash = append.events.find((event) => byId.has(event.eventId))
  const existing = clash === undefined ? undefined : byId.get(clash.eventId)
  return Effect.fail(
    new DuplicateEventId({
      streamId: append.streamId,
      eventId: clash?.eventId ?? append.events[0].eventId,
      existingStreamId: existing?.streamId,
      existingVersion: existing?.streamVersion
    })
  )
}
