/**
 * Filters of the global log.
 */
import * as Effect from "effect/Effect"
import type { InvalidInput } from "../../Errors.js"
import type { EventFilter } from "../../EventStore.js"
import * as StreamId from "../../StreamId.js"
import { names } from "./names.js"

/**
 * An event filter, checked, with sets for matching in memory.
 */
export interface ResolvedFilter {
  readonly eventTypes: ReadonlyArray<string> | undefined
  readonly categories: ReadonlyArray<string> | undefined
  readonly streamIds: ReadonlyArray<string> | undefined
  readonly eventTypePrefixes: ReadonlyArray<string> | undefined
  readonly streamIdPrefixes: ReadonlyArray<string> | undefined
}

/** Whether a filter lets every event through. */
export const isUnfiltered = (filter: ResolvedFilter): boolean =>
  filter.eventTypes === undefined && filter.categories === undefined && filter.streamIds === undefined &&
  filter.eventTypePrefixes === undefined && filter.streamIdPrefixes === undefined

export const eventFilter = (filter: EventFilter | undefined): Effect.Effect<ResolvedFilter, InvalidInput> =>
  Effect.all({
    eventTypes: names("filter.eventTypes", filter?.eventTypes),
    categories: names("filter.categories", filter?.categories),
    streamIds: names("filter.streamIds", filter?.streamIds),
    eventTypePrefixes: names("filter.eventTypePrefixes", filter?.eventTypePrefixes),
    streamIdPrefixes: names("filter.streamIdPrefixes", filter?.streamIdPrefixes)
  })

/**
 * Whether an event passes a filter: every given criterion must hold.
 */
export const matches = (filter: ResolvedFilter) => {
  const types = filter.eventTypes && new Set(filter.eventTypes)
  const categories = filter.categories && new Set(filter.categories)
  const streams = filter.streamIds && new Set(filter.streamIds)
  const typePrefixes = filter.eventTypePrefixes
  const streamPrefixes = filter.streamIdPrefixes
  return (event: { readonly eventType: string; readonly streamId: string }): boolean =>
    (types === undefined || types.has(event.eventType)) &&
    (categories === undefined || categories.has(StreamId.category(event.streamId))) &&
    (streams === undefined || streams.has(event.streamId)) &&
    (typePrefixes === undefined || typePrefixes.some((prefix) => event.eventType.startsWith(prefix))) &&
    (streamPrefixes === undefined || streamPrefixes.some((prefix) => event.streamId.startsWith(prefix)))
}
