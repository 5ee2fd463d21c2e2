package readmodel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/events"
)

// ChangesChannel is the channel of the changes announcements that precede
// a position announcement in the same transaction, so a listener of both
// channels receives them first. A separate channel keeps the position
// channel's payload as it was for every listener that parses it.
const ChangesChannel = "authstream_projection_changes"

// MaxChangesPayload keeps a changes payload under PostgreSQL's 8000-byte
// limit on NOTIFY payloads, with room for the header.
const MaxChangesPayload = 7000

// Changed is one item of a changes announcement: an aggregate
// (Tenant, Aggregate, ID), or a whole tenant when Aggregate is empty.
type Changed struct {
	Tenant    string
	Aggregate string
	ID        string
}

// String returns the item's payload form: "<tenant>.<aggregate>.<id>" or
// "<tenant>". Subject tokens hold no dot or space, so items split
// unambiguously.
func (c Changed) String() string {
	if c.Aggregate == "" {
		return c.Tenant
	}
	return c.Tenant + "." + c.Aggregate + "." + c.ID
}

// Changes is one changes announcement: the events of a partition after
// stream sequence From up to To changed Items.
type Changes struct {
	Projection string
	Partition  int
	From, To   uint64
	Items      []Changed
}

// String returns the payload form of c:
// "<projection>:<partition>:<from>:<to>:<items separated by spaces>".
func (c Changes) String() string {
	var b strings.Builder
	b.WriteString(c.Projection + ":" + strconv.Itoa(c.Partition) + ":" +
		strconv.FormatUint(c.From, 10) + ":" + strconv.FormatUint(c.To, 10) + ":")
	for i, it := range c.Items {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(it.String())
	}
	return b.String()
}

// ParseChanges reads a payload of ChangesChannel. An item that is not a
// valid "<tenant>" or "<tenant>.<aggregate>.<id>" refuses the whole
// payload, so that a listener treats the advance as changing the whole
// partition.
func ParseChanges(payload string) (Changes, error) {
	parts := strings.SplitN(payload, ":", 5)
	if len(parts) != 5 || parts[0] == "" {
		return Changes{}, fmt.Errorf("changes notification %q is not projection:partition:from:to:items", payload)
	}
	p, err1 := strconv.Atoi(parts[1])
	from, err2 := strconv.ParseUint(parts[2], 10, 64)
	to, err3 := strconv.ParseUint(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 || from >= to {
		return Changes{}, fmt.Errorf("changes notification %q: bad partition or range", payload)
	}
	c := Changes{Projection: parts[0], Partition: p, From: from, To: to}
	for item := range strings.FieldsSeq(parts[4]) {
		var ch Changed
		switch f := strings.Split(item, "."); len(f) {
		case 1:
			ch = Changed{Tenant: f[0]}
		case 3:
			ch = Changed{Tenant: f[0], Aggregate: f[1], ID: f[2]}
			if !events.ValidToken(ch.Aggregate) || !events.ValidToken(ch.ID) {
				return Changes{}, fmt.Errorf("changes notification: bad item %q", item)
			}
		default:
			return Changes{}, fmt.Errorf("changes notification: bad item %q", item)
		}
		if !events.ValidToken(ch.Tenant) {
			return Changes{}, fmt.Errorf("changes notification: bad item %q", item)
		}
		c.Items = append(c.Items, ch)
	}
	return c, nil
}
