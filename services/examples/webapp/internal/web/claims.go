package web

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// claim is one claim as a page shows it.
type claim struct {
	Name, Value string
}

// timeClaims are the claims that are instants (seconds since the epoch):
// the page shows them as dates too.
var timeClaims = []string{"exp", "iat", "nbf", "auth_time", "updated_at"}

// claimsOf returns the members of the JSON object raw, sorted by name:
// strings as they are, numbers as they were written, instants with their
// date, anything else as compact JSON.
func claimsOf(raw []byte) ([]claim, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	out := make([]claim, 0, len(m))
	for name, v := range m {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
			if n, err := v.Int64(); err == nil && slices.Contains(timeClaims, name) {
				s += " (" + time.Unix(n, 0).UTC().Format(time.RFC3339) + ")"
			}
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			s = string(b)
		}
		out = append(out, claim{Name: name, Value: s})
	}
	slices.SortFunc(out, func(a, b claim) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// valueOf returns the value of the claim name, "" when there is none.
func valueOf(cs []claim, name string) string {
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// claimTable is a table of claims on a page; each value's cell has the id
// <ID>-<claim name>.
type claimTable struct {
	ID, Caption string
	Claims      []claim
}

func newClaimTable(id, caption string, cs []claim) claimTable {
	return claimTable{ID: id, Caption: caption, Claims: cs}
}
