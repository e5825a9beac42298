/**
 * The stream lifecycle: metadata with its own expected version, soft delete,
 * tombstone, archive, erasure and scavenge. The core checks the input and the
 * expected version (inside the driver's hold on the stream); the driver
 * stores.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  type ConcurrencyError,
  type InvalidInput,
  MetadataConcurrencyError,
  type StoreError,
  StreamDeleted
} from "../../Errors.js"
import type {
  ArchiveResult,
  EraseResult,
  ScavengeOptions,
  ScavengeResult,
  SetStreamMetadataOptions,
  SetStreamMetadataResult,
  StreamLifecycleError,
  StreamLifecycleOptions,
  StreamMetadata,
  StreamMetadataInput
} from "../../EventStore.js"
import * as Validation from "../validation/index.js"
import type { EventStoreDriver } from "./driver.js"
import * as StoredMetadata from "./streamMetadata.js"
import { lifecycleCheck } from "./streamState.js"

export const getStreamMetadata =
  (driver: EventStoreDriver) =>
  (streamId: string): Effect.Effect<StreamMetadata, StreamDeleted | InvalidInput | StoreError> =>
    Effect.gen(function*() {
      yield* Validation.streamId(streamId)
      const row = yield* driver.getMetadata(streamId)
      if (Option.isNone(row)) return StoredMetadata.none(streamId)
      if (row.value.tombstoned) return yield* new StreamDeleted({ streamId })
      return StoredMetadata.fromStored(row.value)
    }).pipe(Effect.withSpan("EventStore.getStreamMetadata", { attributes: { streamId } }))

export const setStreamMetadata = (driver: EventStoreDriver, limits: Validation.Limits) =>
(
  streamId: string,
  metadata: StreamMetadataInput,
  options?: SetStreamMetadataOptions
): Effect.Effect<SetStreamMetadataResult, MetadataConcurrencyError | StreamDeleted | InvalidInput | StoreError> =>
  Effect.gen(function*() {
    const prepared = yield* Validation.prepareMetadata(streamId, metadata, options, limits)
    const written = yield* driver.setMetadata(prepared)
    switch (written._tag) {
      case "Written":
        return { metadataVersion: written.metadataVersion }
      case "Tombstoned":
        return yield* new StreamDeleted({ streamId })
      case "Conflict":
        return yield* new MetadataConcurrencyError({ streamId, expected: prepared.expected, actual: written.actual })
    }
  }).pipe(Effect.withSpan("EventStore.setStreamMetadata", { attributes: { streamId } }))

const withCheck = <A>(
  name: string,
  act: (
    streamId: string,
    check: ReturnType<typeof lifecycleCheck>
  ) => Effect.Effect<A, ConcurrencyError | StreamDeleted | StoreError>
) =>
(streamId: string, options?: StreamLifecycleOptions): Effect.Effect<A, StreamLifecycleError> =>
  Effect.gen(function*() {
    const { expected } = yield* Validation.streamLifecycle(streamId, options)
    return yield* act(streamId, lifecycleCheck(streamId, expected))
  }).pipe(Effect.withSpan(`EventStore.${name}`, { attributes: { streamId } }))

export const deleteStream = (driver: EventStoreDriver) => withCheck("deleteStream", driver.deleteStream)

export const tombstoneStream = (driver: EventStoreDriver) => withCheck("tombstoneStream", driver.tombstoneStream)

export const archiveStream = (driver: EventStoreDriver) =>
  withCheck(
    "archiveStream",
    (streamId, check) => Effect.map(driver.archiveStream(streamId, check), (archived): ArchiveResult => ({ archived }))
  )

export const eraseStream =
  (driver: EventStoreDriver) => (streamId: string): Effect.Effect<EraseResult, InvalidInput | StoreError> =>
    Validation.streamId(streamId).pipe(
      Effect.zipRight(driver.eraseStream(streamId)),
      Effect.map((erased) => ({ erased })),
      Effect.withSpan("EventStore.eraseStream", { attributes: { streamId } })
    )

export const scavenge =
  (driver: EventStoreDriver) => (options?: ScavengeOptions): Effect.Effect<ScavengeResult, InvalidInput | StoreError> =>
    Validation.scavengeOptions(options).pipe(
      Effect.flatMap(({ batchSize }) => driver.scavenge(batchSize)),
      Effect.withSpan("EventStore.scavenge")
    )
