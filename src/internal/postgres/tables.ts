/**
 * The store's tables and functions in its schema, and the columns its reads
 * select, as SQL fragments of one client.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { EventMetadata } from "../../EventData.js"
import type { RecordedEvent } from "../../RecordedEvent.js"

export type Tables = ReturnType<typeof make>

export const make = (sql: SqlClient.SqlClient, schema: string) => {
  const events = sql(`${schema}.events`)
  const archive = sql(`${schema}.events_archive`)
  // The columns both tables store, in one order.
  const storedColumns = sql.literal(
    "position, event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata, recorded_at, erased_at"
  )
  return {
    events,
    archive,
    streams: sql(`${schema}.streams`),
    positions: sql(`${schema}.events_position_seq`),
    deletions: sql(`${schema}.stream_deletions`),
    appendToStream: sql(`${schema}.append_to_stream`),
    appendBatch: sql(`${schema}.append_batch`),
    appendUnlessBusy: sql(`${schema}.append_unless_busy`),
    viewStream: sql(`${schema}.view_stream`),
    storedColumns,
    // Qualified by the alias `e` that every read gives the events table: ORDER BY
    // would otherwise pick the text output columns and sort "10" before "9".
    // The instants come as seconds since the epoch, cut to whole milliseconds
    // as a `Date` holds them (float8): a `Date` from a number costs a fraction
    // of parsing the timestamp's text, which node-postgres would do for every
    // row, and the server formats a float faster than a timestamp.
    eventColumns: sql.literal(
      "e.position::text AS position, e.event_id::text AS event_id, e.stream_id, e.stream_version::text AS stream_version, " +
        "e.event_type, e.schema_version, e.data, e.metadata, " +
        "date_part('epoch', date_trunc('milliseconds', e.recorded_at)) AS recorded_at, " +
        "date_part('epoch', date_trunc('milliseconds', e.erased_at)) AS erased_at"
    ),
    // The hot log and the archive as one relation. PostgreSQL flattens the
    // UNION ALL and pushes the conditions into both sides, so a keyset page is a
    // merge of two index scans.
    hotAndArchived: sql`(SELECT ${storedColumns} FROM ${events} UNION ALL SELECT ${storedColumns} FROM ${archive})`
  }
}

/** A row of `eventColumns`. */
export interface EventRow {
  readonly position: string
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: string
  readonly event_type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: EventMetadata
  /** Seconds since the epoch, in whole milliseconds. */
  readonly recorded_at: number
  readonly erased_at: number | null
}

// The float is within a small fraction of a millisecond of a whole number of
// them, so rounding gives the instant node-postgres would have parsed from the
// timestamp's text (checked against it from 2020 to the year 5000).
const toDate = (seconds: number): Date => new Date(Math.round(seconds * 1000))

// One object literal per shape, no spread: this runs for every event read.
export const toRecordedEvent = (row: EventRow): RecordedEvent =>
  row.erased_at === null
    ? {
      eventId: row.event_id,
      streamId: row.stream_id,
      streamVersion: Number(row.stream_version),
      position: BigInt(row.position),
      eventType: row.event_type,
      schemaVersion: row.schema_version,
      data: row.data,
      metadata: row.metadata,
      recordedAt: toDate(row.recorded_at)
    }
    : {
      eventId: row.event_id,
      streamId: row.stream_id,
      streamVersion: Number(row.stream_version),
      position: BigInt(row.position),
      eventType: row.event_type,
      schemaVersion: row.schema_version,
      data: row.data,
      metadata: row.metadata,
      recordedAt: toDate(row.recorded_at),
      erasedAt: toDate(row.erased_at)
    }
