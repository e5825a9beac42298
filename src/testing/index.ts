/**
 * effect-event-store/testing: a kit for testing aggregates — Given/When/Then
 * specifications and property tests over random command sequences.
 *
 * @since 0.1.0
 */
export * as DeciderSpecification from "./DeciderSpecification.js"
export * as Properties from "./Properties.js"
