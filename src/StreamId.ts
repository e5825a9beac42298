/**
 * Stream ids and their categories.
 *
 * @since 0.1.0
 */
import { maxNameLength } from "./internal/validation/limits.js"

/**
 * The longest stream id, in UTF-16 code units.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLength: number = maxNameLength

/**
 * The category of a stream is the part of its id before the first `-`
 * (`Order-123` belongs to `Order`); an id without `-` is its own category.
 *
 * @since 0.1.0
 * @category accessors
 */
export const category = (streamId: string): string => {
  const dash = streamId.indexOf("-")
  return dash === -1 ? streamId : streamId.slice(0, dash)
}
