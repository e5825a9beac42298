/**
 * What every backend's snapshot store does before and while storing a
 * snapshot: the checks of `save`, and the rule of which snapshot is kept.
 */
import * as Effect from "effect/Effect"
import { InvalidInput } from "../Errors.js"
import type { SnapshotBasis, SnapshotToSave } from "../SnapshotStore.js"
import * as Validation from "./validation/index.js"
import { maxSchemaVersion } from "./validation/limits.js"

/**
 * A snapshot that passed the checks of `save`, its state serialised once.
 */
export interface PreparedSnapshot extends SnapshotBasis {
  readonly streamId: string
  readonly schemaVersion: number
  /** JSON text. */
  readonly state: string
}

/**
 * Checks a snapshot as every backend does before storing it: the stream id
 * like an append's, positive versions, a `firstVersion` from 1 to `version` + 1,
 * a non-negative `epoch`, and a state that is JSON as `jsonb` stores it (by the
 * very rules events are held to).
 */
export const prepareSnapshot = (
  streamId: string,
  snapshot: SnapshotToSave
): Effect.Effect<PreparedSnapshot, InvalidInput> =>
  Effect.flatMap(
    Validation.streamId(streamId),
    () =>
      Validation.readInput("snapshot", () => {
        const { epoch, firstVersion, schemaVersion, state, version } = snapshot
        if (!Number.isSafeInteger(version) || version < 1) {
          return new InvalidInput({ field: "snapshot.version", reason: "must be a positive integer" })
        }
        if (!Number.isSafeInteger(firstVersion) || firstVersion < 1 || firstVersion > version + 1) {
          return new InvalidInput({
            field: "snapshot.firstVersion",
            reason: "must be an integer from 1 to version + 1"
          })
        }
        if (!Number.isSafeInteger(epoch) || epoch < 0) {
          return new InvalidInput({ field: "snapshot.epoch", reason: "must be a non-negative integer" })
        }
        if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > maxSchemaVersion) {
          return new InvalidInput({ field: "snapshot.schemaVersion", reason: "must be a positive integer" })
        }
        // The state is held to exactly the rules of event data, by the same code.
        return Effect.map(
          Validation.json("snapshot.state", state),
          (json): PreparedSnapshot => ({ streamId, version, firstVersion, epoch, schemaVersion, state: json })
        )
      })
  )

/**
 * Whether a save of `incoming` replaces the `stored` snapshot (the rule every
 * backend follows).
 */
export const replaces = (
  incoming: { readonly version: number; readonly epoch: number; readonly schemaVersion: number },
  stored: { readonly version: number; readonly epoch: number; readonly schemaVersion: number }
): boolean =>
  incoming.schemaVersion !== stored.schemaVersion || incoming.epoch > stored.epoch ||
  (incoming.epoch === stored.epoch && incoming.version >= stored.version)
