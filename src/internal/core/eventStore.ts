/**
 * The event store over a driver: what `SqlClient.make` is to the drivers of
 * `@effect/sql`. Every backend builds its `EventStore` here, so validation,
 * read planning, paging, the subscription loop, the lifecycle checks and the
 * spans are written once.
 */
import type { EventStore } from "../../EventStore.js"
import type * as Validation from "../validation/index.js"
import * as Append from "./append.js"
import type { EventStoreDriver } from "./driver.js"
import * as Lifecycle from "./lifecycle.js"
import * as Reads from "./reads.js"
import { subscribe, subscribeWithCheckpoints } from "./subscribe.js"

export interface CoreOptions {
  readonly limits: Validation.Limits
}

export const make = (driver: EventStoreDriver, options: CoreOptions): EventStore => ({
  append: Append.make(driver, options.limits),
  readStream: Reads.readStream(driver),
  viewStream: Reads.viewStream(driver),
  readAll: Reads.readAll(driver),
  subscribe: subscribe(driver),
  subscribeWithCheckpoints: subscribeWithCheckpoints(driver),
  headPosition: driver.settledHorizon,
  streamVersion: Reads.streamVersion(driver),
  listStreams: Reads.listStreams(driver),
  getStreamMetadata: Lifecycle.getStreamMetadata(driver),
  setStreamMetadata: Lifecycle.setStreamMetadata(driver, options.limits),
  deleteStream: Lifecycle.deleteStream(driver),
  tombstoneStream: Lifecycle.tombstoneStream(driver),
  archiveStream: Lifecycle.archiveStream(driver),
  eraseStream: Lifecycle.eraseStream(driver),
  scavenge: Lifecycle.scavenge(driver)
})
