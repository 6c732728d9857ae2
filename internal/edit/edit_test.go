package edit

import "testing"

func TestAllAppliesInOrder(t *testing.T) {
	var got []int
	push := func(n int) func(*[]int) { return func(s *[]int) { *s = append(*s, n) } }
	All(push(1), push(2), push(3))(&got)
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("All(1, 2, 3) applied %v, want [1 2 3]", got)
	}
}
