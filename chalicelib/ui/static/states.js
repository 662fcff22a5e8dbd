// Task and run states: a colour AND a letter each, so a state never depends on colour alone.

export const STATES = {
  success: { color: "#2e7d32", ink: "#fff", letter: "S" },
  failed: { color: "#c62828", ink: "#fff", letter: "F" },
  running: { color: "#0277bd", ink: "#fff", letter: "R" },
  queued: { color: "#757575", ink: "#fff", letter: "Q" },
  scheduled: { color: "#d2b48c", ink: "#000", letter: "C" },
  up_for_retry: { color: "#f9a825", ink: "#000", letter: "Y" },
  up_for_reschedule: { color: "#4dd0e1", ink: "#000", letter: "W" },
  upstream_failed: { color: "#ef6c00", ink: "#000", letter: "U" },
  skipped: { color: "#f48fb1", ink: "#000", letter: "K" },
  deferred: { color: "#9575cd", ink: "#000", letter: "D" },
  restarting: { color: "#ce93d8", ink: "#000", letter: "T" },
  removed: { color: "#e0e0e0", ink: "#000", letter: "X" },
  none: { color: "#fafafa", ink: "#555", letter: "·" },
};

export function stateOf(name) {
  return STATES[name || "none"] || STATES.none;
}

export const FINISHED = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);
