package invalidate

import engine "github.com/tiercache/tiercache/internal/remote"

// WriteScript returns the Lua source of the script through which tiercache
// writes keys and publishes (and logs) their invalidation atomically, for
// a writer in another language to EVAL (see the package doc, "Writing from
// another language").
func WriteScript() string { return engine.WriteSource() }
