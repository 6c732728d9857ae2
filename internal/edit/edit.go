// Package edit composes the edits that table tests apply to a value (a
// state, a config) to build each case from named parts. Tests only.
package edit

// All is the edit that applies edits in order.
func All[T any](edits ...func(*T)) func(*T) {
	return func(v *T) {
		for _, e := range edits {
			e(v)
		}
	}
}
