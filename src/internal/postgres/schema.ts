/**
 * The PostgreSQL schema that holds the store's tables: its default and the
 * one check every SQL service applies to the `schema` option.
 */
import * as Effect from "effect/Effect"
import { InvalidInput } from "../../Errors.js"

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/

/** The schema the store's tables live in unless told otherwise. */
export const defaultSchema = "event_store"

/**
 * A schema name the store accepts: lower case letters, digits and `_`, so that
 * it needs no quoting anywhere (also when the migrations are run by hand).
 */
export const validateSchema = (schema: string): Effect.Effect<string, InvalidInput> =>
  schemaName.test(schema)
    ? Effect.succeed(schema)
    : Effect.fail(new InvalidInput({ field: "schema", reason: `"${schema}" must match ${schemaName.source}` }))

/** The schema option of every SQL service, checked, with its default. */
export const schemaOf = (
  options: { readonly schema?: string | undefined } | undefined
): Effect.Effect<string, InvalidInput> => validateSchema(options?.schema ?? defaultSchema)
