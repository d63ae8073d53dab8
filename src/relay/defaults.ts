/**
 * The relay's defaults that `cwtch-groups relay --help` states, in a module that loads no relay
 * machinery, so help stays fast (docs/CLI.md "Start-up").
 */
import { POW_DEFAULT_DIFFICULTY } from '../tokens/pow-difficulty.ts';

/** Proof-of-work bits a relay asks by default: docs/tokens.md, "Difficulty". */
export const RELAY_POW_DEFAULT_BITS = POW_DEFAULT_DIFFICULTY;

/**
 * How old, at most, a checkpoint this relay serves may be (docs/log.md §7, "Freshness"): it
 * re-signs its head when the head is half that old, so an honest relay's checkpoints arrive
 * well inside it. A minute: a frozen view that is merely replayed is refused within one.
 */
export const DEFAULT_MAX_CHECKPOINT_AGE_MS = 60_000;
