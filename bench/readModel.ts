/**
 * The SQL read model of the projection workload, the same for every
 * contender: one row per stream with the number of its events and the last
 * position applied, kept by one upsert per event.
 */

/** Creates the read model table (`table` is a checked, qualified identifier). */
export const createTableText = (table: string): string =>
  `CREATE TABLE ${table} (stream_id text PRIMARY KEY, events bigint NOT NULL, last_position bigint NOT NULL)`

/** The handler's statement: `$1` the event's stream, `$2` its global position. */
export const upsertText = (table: string): string =>
  `INSERT INTO ${table} AS t (stream_id, events, last_position) VALUES ($1, 1, $2)
   ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1, last_position = EXCLUDED.last_position`

/** The number of events the table has applied. */
export const appliedEventsText = (table: string): string =>
  `SELECT coalesce(sum(events), 0)::text AS events FROM ${table}`

export const dropTableText = (table: string): string => `DROP TABLE IF EXISTS ${table}`
