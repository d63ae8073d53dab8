/**
 * The size limit of a message body, in a module that imports nothing: the CLI's error hints
 * state it without loading the message codec and its cryptography (docs/CLI.md "Start-up").
 */

/** The largest body any message may carry; every message of at most this size fits one envelope. */
export const MAX_BODY_BYTES = 1200;
