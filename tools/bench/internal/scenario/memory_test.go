package scenario

import (
	"runtime"
	"testing"
)

// TestHeapParts_chargesTheAllocatingCode keeps 64 MiB allocated by this
// package alive and expects the generator's share to hold it.
func TestHeapParts_chargesTheAllocatingCode(t *testing.T) {
	const size = 64 << 20
	held := make([][]byte, 64)
	for i := range held {
		held[i] = make([]byte, size/len(held))
	}
	parts := heapParts()
	runtime.KeepAlive(held)
	var generator, total int64
	for _, p := range parts {
		if p.bytes < 0 {
			t.Errorf("%s: %d bytes", p.name, p.bytes)
		}
		total += p.bytes
		if p.name == "generator" {
			generator = p.bytes
		}
	}
	if generator < size*9/10 || generator > size*2 {
		t.Errorf("generator holds %d bytes, want about %d (parts %v)", generator, size, parts)
	}
	if total < generator {
		t.Errorf("total %d below the generator's %d", total, generator)
	}
}

func TestSeedPlan(t *testing.T) {
	plan := seedPlan("t", 3, 25, true)
	if len(plan.Tenants) != 3 || plan.Tenants[0] != "t00000" || plan.Tenants[2] != "t00002" {
		t.Errorf("tenants %v", plan.Tenants)
	}
	if len(plan.Roles) != seedRoleCount+1 || plan.Roles[seedRoleCount].Name != "extra" {
		t.Errorf("roles %v, want %d and extra", plan.Roles, seedRoleCount)
	}
	held := map[string]int{}
	for i := range plan.Users {
		for _, r := range plan.UserRoles(i) {
			held[r]++
		}
	}
	if len(held) != seedRoleCount {
		t.Errorf("users hold %d distinct roles, want each of the %d", len(held), seedRoleCount)
	}
	// Every permission checks ask about exists in a role or is denied by all.
	granted := map[string]bool{}
	for _, r := range plan.Roles {
		for _, p := range r.Permissions {
			granted[p] = true
		}
	}
	allowed := 0
	for _, p := range seedPerms() {
		if granted[p] {
			allowed++
		}
	}
	if allowed != seedRoleCount || len(seedPerms()) != 2*seedRoleCount {
		t.Errorf("%d of %d checked permissions are granted by some role, want %d of %d", allowed, len(seedPerms()), seedRoleCount, 2*seedRoleCount)
	}
}
