/**
 * effect-event-store/testing: a kit for testing aggregates — Given/When/Then
 * specifications and property tests over random command sequences.
 *
 * @since 0.1.0
 */

/**
 * Given/When/Then specifications for aggregates.
 *
 * @since 0.1.0
 */
export * as DeciderSpecification from "./DeciderSpecification.js"

/**
 * Property tests for event-sourced code, on fast-check.
 *
 * @since 0.1.0
 */
export * as Properties from "./Properties.js"
