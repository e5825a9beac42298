/**
 * Read model generations on PostgreSQL: a row per projection in
 * `projection_generations`, and views named after the read model tables that
 * select from the active generation's tables.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { InvalidInput } from "../Errors.js"
import { Generations, Superseded, tableName } from "../Generations.js"
import { schemaOf } from "../internal/postgres/schema.js"
import { storeError } from "../internal/postgres/sqlErrors.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresGenerationsOptions {
  /** The schema of the event store (default `event_store`). */
  readonly schema?: string | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: PostgresGenerationsOptions
): Effect.Effect<Generations, InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* schemaOf(options)
    const generations = sql(`${schema}.projection_generations`)
    const checkpoints = sql(`${schema}.checkpoints`)

    const current = (name: string) =>
      Effect.gen(function*() {
        yield* sql`INSERT INTO ${generations} (name, active) VALUES (${name}, 1) ON CONFLICT (name) DO NOTHING`
        const [row] = yield* sql<{ readonly active: number; readonly building: number | null }>`
          SELECT active, building FROM ${generations} WHERE name = ${name}`
        return { active: row?.active ?? 1, building: row?.building ?? undefined }
      }).pipe(Effect.catchTag("SqlError", storeError(`Could not read the generations of "${name}"`)))

    const requestRebuild = (name: string) =>
      Effect.gen(function*() {
        yield* current(name)
        const [row] = yield* sql<{ readonly building: number }>`
          UPDATE ${generations} SET building = coalesce(building, active + 1) WHERE name = ${name} RETURNING building`
        return row?.building ?? 2
      }).pipe(Effect.catchTag("SqlError", storeError(`Could not request a rebuild of "${name}"`)))

    const guard = (name: string, generation: number) =>
      Effect.gen(function*() {
        const [row] = yield* sql<{ readonly active: number; readonly building: number | null }>`
          SELECT active, building FROM ${generations} WHERE name = ${name} FOR SHARE`
        if (row === undefined || (row.active !== generation && row.building !== generation)) {
          return yield* new Superseded({ name, generation })
        }
      }).pipe(Effect.catchTag("SqlError", storeError(`Could not check the generation of "${name}"`)))

    const views = (generation: number, tables: ReadonlyArray<string>) =>
      Effect.forEach(tables, (table) =>
        sql`CREATE OR REPLACE VIEW ${sql(table)} AS SELECT * FROM ${sql(tableName(table, generation))}`, {
        discard: true
      })

    const publish = (generation: number, tables: ReadonlyArray<string>) =>
      views(generation, tables).pipe(Effect.catchTag("SqlError", storeError("Could not create the read model views")))

    const trySwitch = (name: string, generation: number, position: bigint, tables: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        // FOR UPDATE waits for the active runner's batch in flight (it holds the
        // row FOR SHARE), so the checkpoint read next is the one it committed.
        const [row] = yield* sql<{ readonly active: number; readonly building: number | null }>`
          SELECT active, building FROM ${generations} WHERE name = ${name} FOR UPDATE`
        if (row === undefined || row.building !== generation) {
          return false
        }
        const [active] = yield* sql<{ readonly position: string }>`
          SELECT position::text AS position FROM ${checkpoints} WHERE name = ${`${name}@${row.active}`}`
        if (active !== undefined && BigInt(active.position) > position) {
          return false
        }
        // A view's columns are fixed when it is created: drop and recreate, in
        // case the new generation's tables have other columns.
        yield* Effect.forEach(tables, (table) =>
          sql`DROP VIEW IF EXISTS ${sql(table)}`, { discard: true })
        yield* views(generation, tables)
        yield* sql`UPDATE ${generations} SET active = ${generation}, building = NULL, switched_at = statement_timestamp()
          WHERE name = ${name}`
        return true
      }).pipe(Effect.catchTag("SqlError", storeError(`Could not switch "${name}" to generation ${generation}`)))

    const drop = (generation: number, tables: ReadonlyArray<string>) =>
      Effect.forEach(tables, (table) =>
        sql`DROP TABLE IF EXISTS ${sql(tableName(table, generation))}`, {
        discard: true
      }).pipe(
        Effect.catchTag("SqlError", storeError(`Could not drop generation ${generation}`))
      )

    return Generations.of({ current, requestRebuild, guard, trySwitch, publish, drop })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PostgresGenerationsOptions
): Layer.Layer<Generations, InvalidInput, SqlClient.SqlClient> => Layer.effect(Generations, make(options))
