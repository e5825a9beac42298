/**
 * Input checks shared by every backend, so that each refuses the same things
 * with the same `InvalidInput`, before anything is written. The core runs
 * them; a driver only ever sees what they prepared.
 */
export * from "./append.js"
export * from "./filter.js"
export { json, readInput } from "./json.js"
export * from "./limits.js"
export * from "./metadata.js"
export { checkName, name, names, streamId, withName } from "./names.js"
export * from "./options.js"
