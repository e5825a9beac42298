/**
 * Every contender by id, for the processes that run them (worker.ts,
 * follower.ts).
 */
import type { ContenderId } from "../protocol.js"
import type { ContenderFactory } from "./Contender.js"
import * as Emmett from "./emmett.js"
import * as Floor from "./floor.js"
import * as Store from "./store.js"

export const factories: Record<ContenderId, ContenderFactory> = {
  store: Store.make,
  "store-batch": Store.makeBatchHandler,
  candidate: Store.makeCandidate,
  emmett: Emmett.make,
  floor: Floor.make,
  "floor-batched": Floor.makeBatched
}

export const isContenderId = (id: string): id is ContenderId => id in factories
